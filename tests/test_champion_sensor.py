"""A manual champion move (the CLI, as the MLflow UI or API would) is picked up by the sensor,
whose run rebuilds the indexes from the new champion; a rollback rebuilds again."""

import json

import dagster as dg
import pytest

pytestmark = pytest.mark.slow

TINY = {
    "ops": {
        "interactions": {"config": {"n_interactions": 4000, "n_communities": 4}},
        "als_model": {"config": {"rank": 8, "iterations": 5, "engine": "implicit", "use_tuned": False}},
        "als_tuning": {"config": {"n_trials": 1, "timeout_seconds": 10}},
        "faiss_index_als_users": {"config": {"recall_sample": 100}},
        "faiss_index_als_items": {"config": {"recall_sample": 100}},
        "lookalike_audiences": {"config": {"audience_size": 20}},
    }
}
ALS = dg.AssetSelection.assets(
    "interactions",
    "interaction_id_map",
    "item_catalog",
    "als_tuning",
    "als_model",
    "als_user_vectors",
    "als_item_vectors",
    "faiss_index_als_users",
    "faiss_index_als_items",
    "als_evaluation",
    "als_promotion",
    "online_metrics",
)


def _tick(sensor, instance, cursor, resources):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    data = sensor.evaluate_tick(ctx)
    return data.run_requests or [], data.cursor


def test_manual_move_and_rollback_trigger_rebuilds(recstack_home, monkeypatch):
    from orchestration import registry_cli as registry
    from orchestration.definitions import build_definitions
    from orchestration.sensors import champion_alias_sensor
    from resources.storage import VersionedStore

    defs = build_definitions("local")
    res = {"mlflow_tracking": defs.resources["mlflow_tracking"]}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", res["mlflow_tracking"].tracking_uri)
    job = dg.define_asset_job("als_only", selection=ALS).resolve(asset_graph=defs.resolve_asset_graph())
    store = VersionedStore(str(recstack_home / "storage"))
    with dg.DagsterInstance.get() as instance:
        for rank in (8, 4):  # v1 (promoted by the policy as the first version) and v2
            ops = {k: v for k, v in TINY["ops"].items() if k != "lookalike_audiences"}
            cfg = {
                "ops": {**ops, "als_model": {"config": {**TINY["ops"]["als_model"]["config"], "rank": rank}}}
            }
            assert job.execute_in_process(instance=instance, run_config=cfg, resources=defs.resources).success
        mlf = res["mlflow_tracking"]
        assert mlf.alias_version("recstack-als", "champion") == "1"
        reqs, cursor = _tick(champion_alias_sensor, instance, None, res)
        # First tick: the served vectors come from v2 (the latest run), the champion is v1: rebuild.
        assert [r.tags["recstack/champion_version"] for r in reqs] == ["1"]
        assert _tick(champion_alias_sensor, instance, cursor, res)[0] == []  # nothing moved: no run

        assert (
            registry.main(["promote", "--model", "recstack-als", "--version", "2", "--reason", "manual"]) == 0
        )
        reqs, cursor = _tick(champion_alias_sensor, instance, cursor, res)
        assert (
            len(reqs) == 1
            and reqs[0].tags["recstack/champion_version"] == "2"
            and reqs[0].job_name == "rebuild_als_serving"
        )
        rebuild = defs.resolve_job_def("rebuild_als_serving")
        small = {k: v for k, v in TINY["ops"].items() if k.startswith(("faiss", "lookalike"))}
        run = rebuild.execute_in_process(
            instance=instance, run_config={"ops": {**small, **reqs[0].run_config["ops"]}}
        )
        assert run.success
        assert store.read(["faiss_index_als_users"]).params["vectors_model_version"] == "2"

        assert registry.main(["rollback", "--model", "recstack-als"]) == 0
        reqs, cursor = _tick(champion_alias_sensor, instance, cursor, res)
        assert [r.tags["recstack/champion_version"] for r in reqs] == ["1"] and json.loads(cursor)[
            "moves"
        ] == 3
        assert len({r.run_key for r in reqs}) == 1


def test_first_tick_rebuilds_nothing_when_the_champion_is_already_served(materialized_slice):
    from orchestration.sensors import champion_alias_sensor, served_versions
    from resources.mlflow_tracking import MlflowResource

    res = {"mlflow_tracking": MlflowResource(tracking_uri=materialized_slice.tracking_uri)}
    with dg.DagsterInstance.from_config(str(materialized_slice.home / "dagster")) as instance:
        assert served_versions(instance) == {"recstack-als": "1"}
        reqs, cursor = _tick(champion_alias_sensor, instance, None, res)
    assert reqs == [] and json.loads(cursor)["seen"] == {"recstack-als": "1"}
