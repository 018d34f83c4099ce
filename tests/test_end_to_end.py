"""The whole slice materializes in a temporary Dagster home; bad input stops at the gate."""

import re
from dataclasses import asdict

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from resources.storage import VersionedStore
from tests.support.slice import TINY

pytestmark = pytest.mark.slow


def _defs():
    from orchestration.definitions import build_definitions

    return build_definitions("local")  # reads RECSTACK_HOME now, after the fixture set it


def test_a_successful_run_prints_no_error_and_no_traceback(materialized_slice):
    """A platform engineer reads ERROR as broken: the slice's whole output has neither."""
    log = materialized_slice.log
    assert materialized_slice.result.success
    assert "als_model" in log and "registered recstack-als version" in log  # the capture saw the run
    bad = [line for line in log.splitlines() if re.search(r"\bERROR\b|Traceback|GOAWAY", line)]
    assert not bad, "\n".join(bad[:20])


def test_slice_materializes_end_to_end(materialized_slice):
    recstack_home, result = materialized_slice.home, materialized_slice.result
    assert result.success
    with dg.DagsterInstance.from_config(str(recstack_home / "dagster")) as instance:
        keys = {k.to_user_string() for k in instance.get_asset_keys()}
    assert keys >= {
        "interactions",
        "als_model",
        "als_user_vectors",
        "als_item_vectors",
        "faiss_index_als_users",
        "faiss_index_als_items",
        "lookalike_audiences",
        "als_evaluation",
        "click_sequences",
        "item2vec_model",
        "item2vec_item_vectors",
        "item2vec_user_vectors",
        "faiss_index_item2vec_items",
        "item2vec_evaluation",
        "entity_profiles",
        "entity_vectors",
        "faiss_index_entities",
        "kb_documents",
        "two_tower_model",
        "kb_doc_vectors",
        "kb_search_fusion",
        "kb_search_evaluation",
        "milvus_collection_entities",
        "milvus_collection_als_items",
        "milvus_collection_als_users",
        "milvus_collection_kb",
        "item_audiences",
        "entity_profile_changes",
        "interaction_id_map",
        "item_catalog",
        "lookalike_evaluation",
        "als_promotion",
        "item2vec_promotion",
        "two_tower_promotion",
        "entity_vectors_promotion",
        "similar_entities",
        "als_tuning",
        "item2vec_tuning",
        "two_tower_tuning",
        "recommendation_fusion",
        "recommender_inputs",
        "user_recommendations",
        "online_metrics",
    }
    tuning = result.output_for_node("als_tuning")
    assert (
        len(tuning["trials"]) == 3 and tuning["best_value"] >= max(v for _, v, _ in tuning["trials"]) - 1e-12
    )
    # Each model trains with its tuning's searched parameters if confirmation adopted them, and
    # with its own config's values if not; params_from says which.
    from assets.embeddings.als_assets import AlsConfig
    from assets.embeddings.item2vec_assets import Item2VecConfig
    from assets.embeddings.two_tower_assets import TwoTowerConfig

    ops = TINY["ops"]

    i2v_tuning, tt_tuning = (
        result.output_for_node("item2vec_tuning"),
        result.output_for_node("two_tower_tuning"),
    )
    assert len(i2v_tuning["trials"]) == 3 and len(tt_tuning["trials"]) == 2
    for node, model, keys, config in (
        (
            "als_tuning",
            "als_model",
            ("rank", "reg", "alpha", "iterations"),
            AlsConfig(**ops["als_model"]["config"]),
        ),
        (
            "item2vec_tuning",
            "item2vec_model",
            ("window", "negative", "min_count"),
            Item2VecConfig(**ops["item2vec_model"]["config"]),
        ),
        (
            "two_tower_tuning",
            "two_tower_model",
            ("tau", "lr", "max_epochs"),
            TwoTowerConfig(**ops["two_tower_model"]["config"]),
        ),
    ):
        t = result.output_for_node(node)
        md = result.asset_materializations_for_node(model)[0].metadata
        c = t["confirmation"]
        assert t["adopted"] == (
            c["tuned"] >= c["default"] * (1 + c["margin"]) and c["tuned"] > c["default"]
        ), node
        expected = (
            {k: t["best_params"][k] for k in keys} if t["adopted"] else {k: getattr(config, k) for k in keys}
        )
        assert {k: md[k].value for k in keys} == pytest.approx(expected), node
        assert md["params_from"].value == (node if t["adopted"] else f"config ({node} kept the defaults)")
        assert result.asset_materializations_for_node(node)[0].metadata["adopted"].value == t["adopted"]
    tt = result.output_for_node("two_tower_model").params
    assert tt.dim == 32  # not searched: the model's own config
    for node in ("item2vec_tuning", "two_tower_tuning"):
        md = result.asset_materializations_for_node(node)[0].metadata
        assert md["history_plot"].value.startswith("![") and "mlflow_run" in md
    sim = result.output_for_node("similar_entities")
    assert len(sim) == 400 * 10 and not (sim["entity_id"] == sim["similar_id"]).any()
    promo = result.output_for_node("als_promotion")
    assert promo["promoted"] and "first version" in promo["reason"]
    # Every user gets a full list of unseen items from the champions, fused as validation chose.
    fusion = result.output_for_node("recommendation_fusion")
    assert set(fusion["metrics"]) == {"fused", "als", "item2vec", "popularity"}
    assert sum(t["chosen"] for t in fusion["trials"]) == 1 and fusion["sources"] == {
        "als": "1",
        "item2vec": "1",
    }
    recs = result.output_for_node("user_recommendations")
    inter = result.output_for_node("interactions", "interactions")
    assert recs["user_id"].nunique() == inter["user_id"].nunique()
    unseen = inter["item_id"].nunique() - inter.groupby("user_id")["item_id"].nunique()
    assert (recs.groupby("user_id").size() == unseen.clip(upper=20)).all()  # full unless all is seen
    seen = inter[["user_id", "item_id"]].drop_duplicates().merge(recs, on=["user_id", "item_id"])
    assert seen.empty  # no seen item is recommended
    assert (recs["item"] == recs["item_id"].astype(str)).all()  # synthetic ids are their own originals
    assert result.output_for_node("online_metrics").empty  # no traffic yet
    milvus = result.output_for_node("milvus_collection_entities")
    assert (
        milvus["collection"] == "recstack_entities__v1"
        and milvus["rows"] == 400
        and milvus["recall@10"] >= 0.8
    )
    kb = result.output_for_node("kb_search_evaluation")
    assert set(kb) == {"two_tower", "bm25", "modes"} and kb["bm25"]["mrr@10"] > 0.5
    fusion = result.output_for_node("kb_search_fusion")
    # the second stage: validation kept it or not, and the evaluation ran what it kept
    assert set(kb["modes"]) == {"bm25", "bm25_pr", "vector", "hybrid"} | (
        {"hybrid_first_stage"} if fusion.reranker else set()
    )
    rerank_chosen = [r for r in fusion.rerank_curve if r["chosen"]]
    assert len(rerank_chosen) == 1 and fusion.rerank_curve[0]["label"] == "first stage"
    assert (rerank_chosen[0]["params"] is None) == (fusion.reranker is None)
    # the second encoder (trained on mined hard negatives) competed in the second stage
    labels = [r["label"] for r in fusion.rerank_curve]
    assert "second encoder w=0.5 depth=10" in labels and "lambdarank + second encoder depth=20" in labels, (
        labels
    )
    from assets.retrieval.kb_fusion import kb_fusion_grid

    chosen = [r for r in fusion.curve if r["chosen"]]
    assert len(fusion.curve) == len(kb_fusion_grid()) and len(chosen) == 1
    assert chosen[0]["params"] == asdict(fusion.fusion) and chosen[0]["label"] == fusion.label
    fmd = result.asset_materializations_for_node("kb_search_fusion")[0].metadata
    assert fmd["fusion"].value == fusion.label and "| fusion | val MRR@10" in fmd["validation_curve"].value
    # The curve went to the served encoder's MLflow run, as an artifact and its two metrics.
    import json

    import mlflow

    uri, run_id = (
        materialized_slice.tracking_uri,
        result.output_for_node("two_tower_model").history["mlflow_run_id"],
    )
    run = mlflow.MlflowClient(uri).get_run(run_id)
    assert run.data.metrics["kb_fusion_val_mrr_at_10"] == pytest.approx(chosen[0]["mrr@10"])
    got = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="kb_fusion_curve.json", tracking_uri=uri
    )
    assert [r["label"] for r in json.loads(open(got).read())] == [r["label"] for r in fusion.curve]
    assert run.data.metrics["kb_rerank_val_mrr_at_10"] == pytest.approx(rerank_chosen[0]["mrr@10"])
    got = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="kb_rerank_curve.json", tracking_uri=uri
    )
    assert json.loads(open(got).read()) == json.loads(json.dumps(fusion.rerank_curve))
    # the second encoder's weights and vectors, beside its curve rows
    got = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="kb_second_encoder", tracking_uri=uri
    )
    from assets.retrieval.kb_second_encoder import SecondEncoder

    second = SecondEncoder.load(got)
    assert second.doc_vecs.shape[0] > 0 and second.encoder.encode(["a question"]).shape == (
        1,
        second.doc_vecs.shape[1],
    )
    look = result.output_for_node("lookalike_evaluation")
    assert look["winner"] in ("u2u", "i2u2u", "i2i2u") and set(look["metrics"]) == {
        "u2u",
        "i2u2u",
        "i2i2u",
        "most_active",
    }
    ent = result.asset_materializations_for_node("entity_vectors")[0].metadata
    assert ent["same_industry_precision_at_10"].value > 2 * ent["fields_only_precision_at_10"].value
    i2v = result.output_for_node("item2vec_evaluation")["metrics"]
    assert set(i2v) == {"item2vec", "als", "popularity"}
    ev = result.output_for_node("als_evaluation")
    assert ev["metrics"]["als"]["ndcg@10"] > ev["metrics"]["popularity"]["ndcg@10"]
    mat = result.asset_materializations_for_node("als_model")[0]
    assert mat.metadata["mlflow_run"].value.startswith("http://127.0.0.1:5000/#/experiments/")
    aud = result.output_for_node("lookalike_audiences")
    assert set(aud["strategy"]) == {"u2u", "i2u2u", "i2i2u"}
    idx_md = result.asset_materializations_for_node("faiss_index_als_users")[0].metadata
    assert idx_md["recall@10_vs_exact"].value == pytest.approx(1.0)
    # MLflow: the version is registered and carries the challenger alias and evaluation metrics.
    import mlflow

    mlflow.set_tracking_uri(materialized_slice.tracking_uri)
    mlflow.set_registry_uri(materialized_slice.tracking_uri)
    client = mlflow.MlflowClient(materialized_slice.tracking_uri)
    mv = client.get_model_version_by_alias("recstack-als", "challenger")
    run = client.get_run(mv.run_id)
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert "eval_als_ndcg_at_10" in run.data.metrics
    # Every tuning trial is a nested run under its tuning asset's parent run.
    exp = client.get_experiment_by_name("recstack")
    for name, n in (("als_tuning", 3), ("item2vec_tuning", 3), ("two_tower_tuning", 2)):
        parent = client.search_runs([exp.experiment_id], f"attributes.run_name = '{name}'")[0]
        children = client.search_runs(
            [exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
        assert len(children) == n and all("seconds" in c.data.metrics for c in children), name
    # The registered pyfunc serves recommendations by alias.
    model = mlflow.pyfunc.load_model("models:/recstack-als@challenger")
    users = result.output_for_node("als_model").user_ids[:3]
    out = model.predict(pd.DataFrame({"user_id": users}), params={"k": 5})
    assert len(out) == 3 and len(out["item_ids"].iloc[0]) == 5
    enc = mlflow.pyfunc.load_model("models:/recstack-two-tower@challenger")
    v = np.asarray(enc.predict(["how do i reset my card", ""]))
    assert (
        v.shape == (2, 32) and np.isfinite(v).all() and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    )
    # Entity vectors are a registered pyfunc too: new profiles map into the indexed space.
    ent_model = mlflow.pyfunc.load_model("models:/recstack-entity-vectors@challenger")
    from assets.embeddings.vectors import table_to_vectors

    profiles = result.output_for_node("entity_profiles").head(3)
    ids, vecs, md = table_to_vectors(result.output_for_node("entity_vectors"))
    assert md["model_name"] == "recstack-entity-vectors" and md["model_version"] == "1"
    got = np.asarray(ent_model.predict(profiles[["description", "location", "type", "tags"]]))
    np.testing.assert_allclose(got, vecs[:3], atol=1e-5)
    free_text = np.asarray(ent_model.predict(pd.DataFrame({"description": ["银行 贷款 理财"]})))
    assert free_text.shape == (1, vecs.shape[1]) and np.isfinite(free_text).all()
    # The recall service loads what the run published, by alias, and answers.
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.state import StateHolder, load_state

    uri = f"sqlite:///{recstack_home / 'mlflow' / 'mlflow.db'}"
    holder = StateHolder(lambda: load_state(str(recstack_home / "storage"), uri))
    with TestClient(create_app(holder, api_key="")) as c:
        ready = c.get("/readyz").json()
        assert ready["ready"] and set(ready["serving"]) == {"entities", "lookalike", "kb", "recommend"}
        assert (
            ready["serving"]["entities"]["model_version"] == "1"
            and ready["serving"]["entities"]["alias"] == "champion"
        )
        assert all(v["index_matches_model"] for v in ready["serving"].values()), ready
        # The backtest's winner is the served default strategy, and /readyz says why.
        winner = result.output_for_node("lookalike_evaluation")["winner"]
        assert ready["serving"]["lookalike"]["default_strategy"] == winner
        assert ready["serving"]["lookalike"]["default_reason"].startswith("backtest winner: audience recall@")
        r = c.post("/v1/similar", json={"entity_ids": [int(ids[0])], "k": 5})
        assert r.status_code == 200 and len(r.json()["results"][0]["ids"]) == 5
        r = c.post("/v1/similar", json={"text": "银行 贷款 理财", "k": 3})
        assert r.status_code == 200 and len(r.json()["results"][0]["ids"]) == 3
        r = c.post("/v1/kb/search", json={"query": "how do i reset my card", "k": 3})
        assert r.status_code == 200 and r.json()["versions"]["model"] == "recstack-two-tower"
        r = c.post("/v1/lookalike", json={"seed_user_ids": users.tolist(), "size": 10})
        assert r.status_code == 200 and len(r.json()["audiences"][0]["user_ids"]) == 10
        # Online and batch lists are one function over the same champions and inputs.
        recs = result.output_for_node("user_recommendations")
        u = int(users[0])
        r = c.post("/v1/recommend", json={"user_id": u, "k": 20})
        batch = recs[recs["user_id"] == u].sort_values("rank")
        assert r.status_code == 200 and [i["item_id"] for i in r.json()["items"]] == batch["item"].tolist()
        assert r.json()["reason"] == batch["reason"].iloc[0]
        # The catalogue published with the inputs filters online: the planted category only.
        cat = result.output_for_node("interactions", "item_catalog").astype({"item_id": str})
        rare = cat.set_index("item_id")["value"].reindex(batch["item"]).value_counts()
        absent = cat["value"][~cat["value"].isin(rare.index)]
        least = absent.min() if len(absent) else rare.idxmin()  # the category the plain list favours least
        inter = result.output_for_node("interactions", "interactions").astype({"item_id": str})
        reachable = set(inter["item_id"]) - set(inter[inter["user_id"] == u]["item_id"])  # unseen
        allowed = set(cat[cat["value"] == least]["item_id"]) & reachable
        body = {
            "user_id": u,
            "k": 20,
            "item_attributes": {"only": [{"attribute": "category", "values": [least]}]},
        }
        got = [i["item_id"] for i in c.post("/v1/recommend", json=body).json()["items"]]
        assert set(got) <= allowed and len(got) == min(20, len(allowed)) > 0, (got, least, allowed)
        assert not set(batch["item"]) <= allowed  # unfiltered, the list is not that category's
    for name in ("recstack-als", "recstack-item2vec", "recstack-two-tower", "recstack-entity-vectors"):
        reqs = client.get_model_version_by_alias(name, "challenger")
        assert reqs.run_id  # every family goes through the same log_and_register path


def test_the_service_answers_from_milvus_over_what_the_run_published(materialized_slice):
    """RECSTACK_SERVE_BACKEND=milvus over the slice: all three capabilities, no index, profiles or
    interactions in the worker, the day's changed entities served and the deleted ones gone."""
    from fastapi.testclient import TestClient

    from assets.indexes.faiss_index import VectorIndex
    from assets.indexes.neighbours import MilvusNeighbours
    from serving.app import create_app
    from serving.state import StateHolder, load_state

    home, result = materialized_slice.home, materialized_slice.result
    root, uri = str(home / "storage"), materialized_slice.tracking_uri
    st = load_state(root, uri, "milvus", str(home / "milvus" / "recstack.db"))
    assert st.backend == "milvus" and set(st.versions) == {"entities", "lookalike", "kb", "recommend"}
    assert all(v.consistent for v in st.versions.values())
    fields = vars(st)
    assert not [k for k, v in fields.items() if isinstance(v, (VectorIndex, pd.DataFrame))]
    assert isinstance(st.entity_index, MilvusNeighbours) and st.kb_index.doc_vecs is None
    assert isinstance(st.audiences.user_ids, np.memmap)  # shared pages, not a copy per worker
    changes = result.output_for_node("entity_profile_changes")
    assert changes["upserted"] == 10 and changes["deleted"] == 2 and changes["encoder_version"] == "1"
    new = [i for i in changes["upserted_ids"] if i >= 400]
    assert len(new) == 5
    faiss = load_state(root, uri)
    users = result.output_for_node("als_model").user_ids[:5].tolist()
    with (
        TestClient(create_app(StateHolder(lambda: st), api_key="")) as m,
        TestClient(create_app(StateHolder(lambda: faiss), api_key="")) as f,
    ):
        assert m.post("/v1/similar", json={"entity_ids": new, "k": 5}).status_code == 200
        for gone in changes["deleted_ids"]:
            assert m.post("/v1/similar", json={"entity_ids": [gone], "k": 5}).status_code == 404
        touched = set(changes["upserted_ids"]) | set(changes["deleted_ids"])
        q = {"entity_ids": [i for i in range(20) if i not in touched][:3], "k": 10}
        a = [set(r["ids"]) for r in f.post("/v1/similar", json=q).json()["results"]]
        b = [set(r["ids"]) for r in m.post("/v1/similar", json=q).json()["results"]]
        assert np.mean([len(x & y) / 10 for x, y in zip(a, b)]) >= 0.7  # IVF_SQ8 against exact
        r = m.post("/v1/lookalike", json={"seed_user_ids": users, "size": 10, "strategy": "u2u"})
        got = r.json()["audiences"][0]["user_ids"]
        assert r.status_code == 200 and len(got) == 10 and not set(got) & set(users)
        r = m.post("/v1/kb/search", json={"query": "how do i reset my card", "k": 3})
        assert r.status_code == 200 and len(r.json()["hits"]) == 3


def test_bad_interactions_are_stopped_and_previous_version_survives(recstack_home, tmp_path, spark_resource):
    defs = _defs()
    good, _ = generate_interactions(SyntheticSpec(n_interactions=1000, seed=3))
    good_path = tmp_path / "good.csv"
    good.to_csv(good_path, index=False)
    bad = good.copy()
    bad.loc[:4, "rating"] = np.nan
    bad.loc[5:6, "rating"] = -3
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    missing_path = tmp_path / "missing.csv"
    good.drop(columns=["ts"]).to_csv(missing_path, index=False)

    job = defs.resolve_job_def("recommendation_slice")
    with dg.DagsterInstance.get() as instance:
        ok = dg.materialize(
            [a for a in defs.assets if dg.AssetKey("interactions") in a.keys],
            instance=instance,
            resources=defs.resources,
            run_config={"ops": {"interactions": {"config": {"source": "file", "path": str(good_path)}}}},
        )
        assert ok.success
        store = VersionedStore(str(recstack_home / "storage"))
        before = store.read(["interactions"])
        # Bad values pass the loader and are stopped by the blocking suite; a missing column is
        # stopped by the loader itself, before the suite, with a message naming the file.
        for path, expected, by_suite in (
            (bad_path, "expect_column_values_to_not_be_null(rating): 5 of 1000 rows unexpected", True),
            (missing_path, "missing column(s) ['ts']", False),
        ):
            cfg = {
                **TINY,
                "ops": {**TINY["ops"], "interactions": {"config": {"source": "file", "path": str(path)}}},
            }
            res = job.execute_in_process(
                instance=instance, run_config=cfg, raise_on_error=False, resources={"spark": spark_resource}
            )
            assert not res.success
            evals = [c for c in res.get_asset_check_evaluations() if c.check_name == "interactions_suite"]
            if by_suite:
                assert len(evals) == 1 and not evals[0].passed
                assert expected in evals[0].description
            else:
                assert not any(c.passed for c in evals)
            failure = next(e for e in res.all_events if e.is_step_failure)
            assert failure.step_key == "interactions" and expected in failure.step_failure_data.error.message
            assert not res.asset_materializations_for_node("als_model")
        for key in ("als_model", "als_user_vectors", "faiss_index_als_users", "lookalike_audiences"):
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is None
    pd.testing.assert_frame_equal(store.read(["interactions"]), before)
