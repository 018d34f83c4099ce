"""The daily warehouse chain through Dagster: idempotent days, bad input stopped, dictionary-driven
columns."""

import json
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from assets.features.layers import day_ms, dwd_cells, table_specs
from assets.features.warehouse_config import load_warehouse_config
from assets.ingest.crm import CrmSpec, daily_events
from resources.feature_store.embedded import EmbeddedStore
from resources.feature_store.resource import CrmSourceResource

LAYOUT = load_warehouse_config()

pytestmark = pytest.mark.slow
END = date.today() - timedelta(days=1)
SMALL = CrmSourceResource(n_users=120, n_opportunities=80)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _defs(**overrides):
    from orchestration.definitions import build_definitions

    return build_definitions("local", overrides)


def _count(store, table):
    return sum(len(c) for _, c in store.scan(table))


def _run_days(defs, instance, days, run_config=QUIET):
    from orchestration.run_local import ingest_chain

    job = defs.resolve_job_def("feature_warehouse_daily")
    for i in range(days - 1, -1, -1):
        sel = None if i == 0 else ingest_chain()
        res = job.execute_in_process(
            instance=instance,
            partition_key=(END - timedelta(days=i)).isoformat(),
            asset_selection=sel,
            run_config=run_config,
            raise_on_error=False,
        )
        assert res.success, [e.step_failure_data.error.message for e in res.all_events if e.is_step_failure]
    return res


def test_daily_chain_is_idempotent_and_dictionary_driven(recstack_home, tmp_path):
    defs = _defs(crm=SMALL)
    # A dictionary with one extra row: a new derived feature with no code change.
    dic = pd.read_csv("assets/features/data/feature_dictionary.csv", keep_default_na=False)
    extra = {
        "dim": "user",
        "id": 77,
        "name": "post_len",
        "explain": "test row",
        "cal_sort": "SUM|MAX",
        "times": "7|30",
        "data_src": "post_sum",
        "agg_rule": "max",
    }
    path = tmp_path / "dict.csv"
    pd.concat([dic, pd.DataFrame([extra])]).to_csv(path, index=False)
    with dg.DagsterInstance.get() as instance:
        assert (
            defs.resolve_job_def("feature_dictionary_load")
            .execute_in_process(
                instance=instance, run_config={"ops": {"feature_dictionary": {"config": {"path": str(path)}}}}
            )
            .success
        )
        last = _run_days(defs, instance, 3)
        store = EmbeddedStore(recstack_home / "feature_store" / "store.sqlite")
        counts = {
            t: _count(store, t)
            for t in ("dwd_events", "mid_daily", "app_features", "scd_opportunity_owner", "feature_index")
        }
        wf = last.output_for_node("window_features")
        assert "post_len_01_SUM_7d" in wf.columns and "post_len_02_MAX_30d" in wf.columns
        manifest = last.output_for_node("libsvm_datasets")
        first_full = open(manifest["full"]).read()
        # Re-materialize every day again: same cells, same files.
        last = _run_days(defs, instance, 3)
        # The last day's drift and volume checks ran against the trailing days, with their numbers.
        ev = {e.check_name: e for e in last.get_asset_check_evaluations()}
        for name in ("hbase_dwd_events_volume", "hbase_mid_daily_volume"):
            assert ev[name].passed and ev[name].metadata["trailing_days"].value == 2, name
        # The window features of earlier days were not built (the ingest chain only): nothing to
        # compare against, which the check says instead of inventing a baseline.
        wv = ev["window_features_volume"]
        assert (
            wv.passed
            and wv.metadata["trailing_days"].value == 0
            and "not enough" in wv.metadata["note"].value
        )
        assert "window_features_psi" in ev and "opportunity_features_psi" in ev
        md = last.asset_materializations_for_node("window_features")[0].metadata
        assert set(md["column_profiles"].value) == set(wf.columns) - {"entity_id", "dim"}
        assert {t: _count(store, t) for t in counts} == counts
        assert open(last.output_for_node("libsvm_datasets")["full"]).read() == first_full
    assert counts["dwd_events"] > 0 and counts["mid_daily"] > 0 and counts["app_features"] > 0
    assert manifest["full_bytes"] < manifest["jsonl_bytes"]
    lines = first_full.splitlines()
    assert len(lines) == manifest["rows"] and lines[0].split()[0] in ("0", "1")
    sub = manifest["models"]["conversion_v1"]
    idx = [int(t.split(":")[0]) for ln in open(sub["path"]).read().splitlines() for t in ln.split()[1:]]
    assert max(idx) <= sub["features"]  # remapped to the model's own 1..k index


def test_bad_events_stop_the_partition_before_any_write(recstack_home, tmp_path):
    ev = daily_events(END, LAYOUT, CrmSpec(n_users=60, n_opportunities=40))
    ev.loc[4, "feature"] = "fax"
    ev.loc[9, "value"] = "lots"
    path = tmp_path / "events-{date}.csv"
    ev.to_csv(str(path).format(date=END.isoformat()), index=False)
    defs = _defs(crm=CrmSourceResource(n_users=60, n_opportunities=40, events_path=str(path)))
    with dg.DagsterInstance.get() as instance:
        defs.resolve_job_def("feature_dictionary_load").execute_in_process(
            instance=instance, run_config=QUIET
        )
        res = defs.resolve_job_def("feature_warehouse_daily").execute_in_process(
            instance=instance, partition_key=END.isoformat(), run_config=QUIET, raise_on_error=False
        )
        assert not res.success
        check = next(c for c in res.get_asset_check_evaluations() if c.check_name == "raw_events_suite")
        assert not check.passed
        assert (
            f"row 4 (event_id={ev.event_id[4]})" in check.description
            and "unknown feature" in check.description
        )
        assert (
            f"row 9 (event_id={ev.event_id[9]})" in check.description
            and "non-numeric value" in check.description
        )
        assert instance.get_latest_materialization_event(dg.AssetKey("hbase_dwd_events")) is None
    store = EmbeddedStore(recstack_home / "feature_store" / "store.sqlite")
    assert _count(store, "dwd_events") == 0


def test_offline_and_realtime_writes_converge(tmp_path):
    store = EmbeddedStore(tmp_path / "s.sqlite")
    store.create_table(table_specs()["dwd_events"])
    ev = daily_events(END, LAYOUT, CrmSpec(n_users=30, n_opportunities=10))
    store.put_cells("dwd_events", dwd_cells(ev))  # offline batch
    live = ev.iloc[:5].assign(detail=json.dumps({"src": "realtime"}))
    store.put_cells("dwd_events", dwd_cells(live))  # the real-time writer saw the same events
    assert _count(store, "dwd_events") == len(ev)
    row, col = dwd_cells(live)[0][:2]
    assert json.loads(store.row("dwd_events", row, [col])[col][0][0])["src"] == "realtime"


def test_mid_ttl_hides_expired_days(tmp_path):
    store = EmbeddedStore(tmp_path / "s.sqlite")
    store.create_table(table_specs(mid_ttl_days=30)["mid_daily"])
    old, new = END - timedelta(days=45), END
    store.put_cells(
        "mid_daily", [(b"aau1", f"m:call_cnt_01_{d:%Y%m%d}".encode(), b"2.0", day_ms(d)) for d in (old, new)]
    )
    got = store.row("mid_daily", b"aau1")
    assert list(got) == [f"m:call_cnt_01_{new:%Y%m%d}".encode()]
    assert store.compact("mid_daily") == 1
