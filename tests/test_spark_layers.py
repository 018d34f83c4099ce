"""The Spark path of the DWD and MID layers builds the single-node path's cells.

Byte identity is the contract (a real-time writer, the offline batch and either engine overwrite
one another's cells), so these tests compare bytes on simulated days and on the hard cases: a
redelivered event, distinct events on one qualifier, fractional and scientific values, details in
another key order, and event ids that JSON has to escape.
"""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from assets.features.layers import build_dwd, mid_cells, mid_daily_values, parse_dwd, value_text
from assets.features.spark_layers import (
    dwd_cells_spark,
    dwd_counts,
    iter_cells,
    mid_cells_spark,
    mid_values_spark,
    percent_g,
    scan_to_parquet,
    write_cells,
)
from assets.features.warehouse_config import load_warehouse_config
from assets.ingest.crm import CrmSpec, daily_events

LAYOUT = load_warehouse_config()
RAW = {"entity_type": "phone", "entity_id": "p1", "feature": "call", "line": "01", "detail": "{}"}
HARD = pd.DataFrame(
    [
        {**RAW, **r}
        for r in [
            {"event_id": "e1", "event_ts": "2026-11-27T10:00:00Z", "value": 1.0, "detail": '{"src":"a"}'},
            # e1 again, later in the batch: the later delivery wins (its detail is the body).
            {"event_id": "e1", "event_ts": "2026-11-27T10:00:00Z", "value": 1.0, "detail": '{"src":"b"}'},
            # e3 and e2 share e1's qualifier: e1 keeps it, then e2 → #1, e3 → #2 (ranked by id).
            {"event_id": "e3", "event_ts": "2026-11-27T10:00:00Z", "value": 1.0, "detail": ""},
            {"event_id": "e2", "event_ts": "2026-11-27T10:00:00Z", "value": 1.0, "detail": None},
            {"event_id": 'q"uo\\te', "event_ts": "2026-11-27T11:00:00Z", "value": 1.5},
            {"event_id": "ünï-cödé", "event_ts": "2026-11-27T12:00:00Z", "value": 1e-05},
            {"event_id": "tab\there", "event_ts": "2026-11-27T12:00:01Z", "value": 123456.0},
            {"event_id": "big", "event_ts": "2026-11-27T12:00:02Z", "value": 1234567.0},
            {"event_id": "frac", "event_ts": "2026-11-27T23:59:59Z", "value": 0.1234565},
            {
                "event_id": "order",
                "event_ts": "2026-11-27T00:00:00Z",
                "value": 7.0,
                "detail": '{"z": 1, "event_id": "dropped", "a": "ü", "n": 1.50}',
            },
            {
                **RAW,
                "entity_id": "u7",
                "entity_type": "user",
                "feature": "login",
                "line": "02",
                "event_id": "u7-1",
                "event_ts": "2026-11-27T08:00:00Z",
                "value": 0.0,
            },
        ]
    ]
)


def _spark_cells(spark, events: pd.DataFrame):
    sdf = spark.createDataFrame(
        events.astype({"value": "float64"}).astype(object).where(events.notna(), None)
    )
    cells, delivered = dwd_cells_spark(spark, sdf)
    rows = cells.select("row", "qualifier", "value", "ts").collect()
    got = sorted((bytes(r.row), bytes(r.qualifier), bytes(r.value), int(r.ts)) for r in rows)
    return got, dwd_counts(cells, delivered)


def test_hard_cases_build_the_same_bytes(spark):
    want = build_dwd(HARD)
    got, counts = _spark_cells(spark, HARD)
    assert got == sorted(want.cells)
    assert counts == {"events_in": 11, "redeliveries": 1, "collisions": 2}
    bodies = {q.decode(): v.decode() for _, q, v, _ in got}
    assert bodies["d:call_01_20261127100000_1"] == '{"event_id":"e1","src":"b"}'
    assert bodies["d:call_01_20261127100000_1#1"] == '{"event_id":"e2"}'
    assert bodies["d:call_01_20261127000000_7"] == '{"event_id":"order","z":1,"a":"\\u00fc","n":1.5}'
    assert '"event_id":"\\u00fcn\\u00ef-c\\u00f6d\\u00e9"' in bodies["d:call_01_20261127120000_1e-05"]


@pytest.mark.parametrize("day", [date(2026, 11, 27), date(2026, 2, 28), date(2027, 1, 1)])
def test_a_simulated_day_builds_the_same_bytes(spark, day):
    events = daily_events(day, LAYOUT, CrmSpec(n_users=300, n_opportunities=200))
    want = build_dwd(events)
    got, counts = _spark_cells(spark, events)
    assert len(got) == len(want.cells) > 1000
    assert got == sorted(want.cells)
    assert counts["collisions"] == want.collisions


def test_percent_g_is_the_qualifier_value_text_on_many_values(spark):
    """Spark's value text is :func:`value_text` on counts, durations, random reals and the knife
    edges (a 5 at the seventh digit), where it is not C's ``%g``."""
    rng = np.random.default_rng(7)
    edges = [0.1234565, 123456.5, 1234565.0, 999999.5, 2.0000005]
    vals = np.concatenate(
        [
            [0.0, 1.0, 120.0, 1.5, 1e-5, 1e-4, 123456.0, 999999.0, 1e6, 1e16, 0.15, 2.5e-5, *edges],
            [round(x, int(d)) for x, d in zip(rng.exponential(100, 5000), rng.integers(0, 8, 5000))],
            rng.exponential(1000, 5000),
            rng.integers(0, 10**9, 2000).astype(float),
        ]
    )
    sdf = spark.createDataFrame(pd.DataFrame({"v": vals}))
    rows = sdf.select("v", percent_g(sdf.v).alias("g")).collect()
    bad = [(r.v, r.g, value_text(r.v)) for r in rows if r.g != value_text(r.v)]
    assert len(rows) == len(vals) and not bad, bad[:5]
    assert [value_text(v) for v in edges] == ["0.123457", "123457", "1.23457e+06", "1e+06", "2"]
    assert [f"{v:g}" for v in edges[:3]] == ["0.123456", "123456", "1.23456e+06"]


def test_mid_on_spark_equals_the_single_node_values_and_cells(spark, tmp_path):
    day = date(2026, 11, 27)
    events = daily_events(day, LAYOUT, CrmSpec(n_users=300, n_opportunities=200))
    cells = build_dwd(events).cells
    rows: dict[bytes, dict] = {}
    for row, col, val, ts in cells:
        rows.setdefault(row, {})[col] = (val, ts)
    want = mid_daily_values(parse_dwd(list(rows.items())), LAYOUT)
    (tmp_path / "scan").mkdir()
    assert scan_to_parquet(iter(rows.items()), str(tmp_path / "scan" / "p.parquet"), batch_rows=500) == len(
        cells
    )
    got = mid_values_spark(spark.read.parquet(str(tmp_path / "scan")), LAYOUT.mid_features)
    key = ["entity_id", "mid_feature", "line"]
    g = got.toPandas().sort_values(key).reset_index(drop=True)
    w = want.sort_values(key).reset_index(drop=True)
    assert len(g) == len(w) > 1000
    pd.testing.assert_frame_equal(g[key], w[key])
    np.testing.assert_allclose(g["value"], w["value"], rtol=1e-12)
    got.write.parquet(str(tmp_path / "values"))
    write_cells(mid_cells_spark(spark.read.parquet(str(tmp_path / "values")), day), str(tmp_path / "cells"))
    spark_cells = sorted(c for b in iter_cells(str(tmp_path / "cells"), batch_rows=700) for c in b)
    want_cells = sorted(mid_cells(want, day, {}, ()))
    assert [c[:2] + c[3:] for c in spark_cells] == [c[:2] + c[3:] for c in want_cells]
    # The values are integral here (counts, seconds), so the bytes agree too.
    assert spark_cells == want_cells


def test_the_warehouse_day_on_spark_writes_the_pandas_days_cells(recstack_home, tmp_path, spark_resource):
    """Through Dagster: the same day with ``engine: spark`` and ``engine: pandas`` in two stores
    leaves the same DWD cells, byte for byte, and the same MID cells."""
    import dagster as dg

    from orchestration.definitions import build_definitions
    from resources.feature_store.embedded import EmbeddedStore
    from resources.feature_store.resource import CrmSourceResource, EmbeddedConfig, FeatureStoreResource

    day = "2026-11-27"
    scans = {}
    for engine in ("pandas", "spark"):
        path = tmp_path / f"{engine}.sqlite"
        defs = build_definitions(
            "local",
            {
                "crm": CrmSourceResource(n_users=150, n_opportunities=100),
                "feature_store": FeatureStoreResource(backend=EmbeddedConfig(path=str(path))),
                "spark": spark_resource,
            },
        )
        job = defs.resolve_job_def("feature_warehouse_daily")
        conf = {"config": {"engine": engine, "write_batch_cells": 997}}
        with dg.DagsterInstance.ephemeral() as instance:
            res = job.execute_in_process(
                instance=instance,
                partition_key=day,
                asset_selection=[
                    dg.AssetKey(k)
                    for k in ("raw_events", "opportunity_snapshot", "hbase_dwd_events", "hbase_mid_daily")
                ],
                run_config={"ops": {"hbase_dwd_events": conf, "hbase_mid_daily": conf}},
            )
        assert res.success
        md = next(m.metadata for m in res.asset_materializations_for_node("hbase_dwd_events"))
        assert md["engine"].value == engine
        store = EmbeddedStore(path)
        scans[engine] = {t: sorted(store.scan(t)) for t in ("dwd_events", "mid_daily")}
    assert len(scans["pandas"]["dwd_events"]) > 100 and len(scans["pandas"]["mid_daily"]) > 100
    assert scans["spark"] == scans["pandas"]
