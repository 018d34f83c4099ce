"""Promotion of the two-tower and entity vectors: the champion is loaded from the registry and scored
on the same held-out data as the challenger."""

import dagster as dg
import pytest

pytestmark = pytest.mark.slow

SEL = dg.AssetSelection.assets(
    "entity_profiles",
    "entity_vectors",
    "entity_vectors_promotion",
    "kb_documents",
    "two_tower_tuning",
    "two_tower_model",
    "kb_doc_vectors",
    "kb_search_fusion",
    "kb_search_evaluation",
    "two_tower_promotion",
)
# The model's own parameters (use_tuned off): these tests are about promotion, not tuning.
CFG = {
    "ops": {
        "entity_profiles": {"config": {"n_entities": 300}},
        "entity_vectors": {"config": {"epochs": 40}},
        "two_tower_tuning": {"config": {"n_trials": 1, "dim": 16, "out_dim": 16}},
        "two_tower_model": {"config": {"max_epochs": 2, "dim": 32, "out_dim": 32, "use_tuned": False}},
    }
}


def test_champions_are_scored_from_the_registry(recstack_home):
    from orchestration.definitions import build_definitions

    defs = build_definitions("local")
    job = dg.define_asset_job("families", selection=SEL).resolve(asset_graph=defs.resolve_asset_graph())
    mlf = defs.resources["mlflow_tracking"]
    with dg.DagsterInstance.get() as instance:
        first = job.execute_in_process(instance=instance, run_config=CFG, resources=defs.resources)
        assert first.success
        ent = first.output_for_node("entity_vectors_promotion")
        assert ent["promoted"] and "fields_only baseline" in ent["reason"]  # text + fields beat fields alone
        assert mlf.alias_version("recstack-entity-vectors", "champion") == "1"
        tt = first.output_for_node("two_tower_promotion")
        assert tt["baseline"] is not None and tt["promoted"] == (tt["challenger"] > tt["baseline"])
        if not tt["promoted"]:
            mlf.move_champion("recstack-two-tower", "1", "test: a champion to compare against", by="test")
        second = job.execute_in_process(instance=instance, run_config=CFG, resources=defs.resources)
        assert second.success
        for node in ("entity_vectors_promotion", "two_tower_promotion"):
            out = second.output_for_node(node)
            assert out["challenger_version"] == "2" and out["champion_version_before"] == "1", out
            assert out["champion"] is not None and "vs champion" in out["reason"], (
                out
            )  # scored via the registry pyfunc
        # Same data, same seed: the champion loaded from the registry scores what the challenger scores.
        ent2 = second.output_for_node("entity_vectors_promotion")
        assert ent2["champion"] == pytest.approx(ent2["challenger"], abs=1e-9) and not ent2["promoted"]


I2V = dg.AssetSelection.assets(
    "interactions",
    "interaction_id_map",
    "item_catalog",
    "click_sequences",
    "item2vec_tuning",
    "item2vec_model",
    "item2vec_evaluation",
    "item2vec_promotion",
    "online_metrics",
)


def test_item2vec_champion_is_refit_and_a_worse_challenger_stays(recstack_home):
    from orchestration.definitions import build_definitions

    defs = build_definitions("local")
    job = dg.define_asset_job("i2v", selection=I2V).resolve(asset_graph=defs.resolve_asset_graph())
    mlf = defs.resources["mlflow_tracking"]
    base = {
        "interactions": {"config": {"n_interactions": 4000, "n_communities": 4}},
        "item2vec_tuning": {"config": {"n_trials": 1, "dim": 8, "epochs": 2}},
    }
    with dg.DagsterInstance.get() as instance:
        runs = []
        for model_cfg in (
            {"dim": 16, "epochs": 5},
            {"dim": 16, "epochs": 5},
            {"dim": 2, "epochs": 1, "window": 1},
        ):
            r = job.execute_in_process(
                instance=instance,
                resources=defs.resources,
                run_config={"ops": {**base, "item2vec_model": {"config": {**model_cfg, "use_tuned": False}}}},
            )
            assert r.success
            runs.append(r.output_for_node("item2vec_promotion"))
    first, same, worse = runs
    assert first["promoted"] and "first version" in first["reason"]
    # Same parameters and data: the refit champion scores what the challenger scores, so no promotion.
    assert same["champion"] == pytest.approx(same["challenger"], abs=1e-9) and not same["promoted"]
    assert worse["challenger"] < worse["champion"] and not worse["promoted"], worse
    assert mlf.alias_version("recstack-item2vec", "champion") == "1"
    assert mlf.alias_version("recstack-item2vec", "challenger") == "3"
