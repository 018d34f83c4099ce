"""The warehouse's partitions start where its data starts; external steps retry; backfills go a day a run."""

from datetime import date

import dagster as dg


def test_start_comes_from_env_then_the_recorded_local_start(recstack_home, monkeypatch):
    from recstack.settings import DEFAULT_WAREHOUSE_START as DEFAULT_START
    from recstack.settings import record_local_start, warehouse_start

    monkeypatch.delenv("RECSTACK_WAREHOUSE_START", raising=False)
    assert warehouse_start() == DEFAULT_START
    assert record_local_start(date(2026, 10, 25)) == "2026-10-25"
    assert record_local_start(date(2026, 11, 1)) == "2026-10-25"  # it does not move forward daily
    assert record_local_start(date(2026, 10, 1)) == "2026-10-01"  # a longer fill moves it back
    monkeypatch.setenv("RECSTACK_WAREHOUSE_START", "2025-06-01")
    assert warehouse_start() == "2025-06-01"


def test_partitioned_assets_carry_backfill_and_retry_policies():
    from orchestration.definitions import build_definitions

    defs = build_definitions("local")
    graph = defs.resolve_asset_graph()
    for key in ("raw_events", "hbase_dwd_events", "window_features", "libsvm_datasets"):
        node = graph.get(dg.AssetKey(key))
        assert node.backfill_policy is not None and node.backfill_policy.max_partitions_per_run == 1, key
    ad = next(a for a in defs.assets if dg.AssetKey("milvus_collection_entities") in a.keys)
    assert ad.op.retry_policy.max_retries == 3
