"""Operating it: freshness checks that fail when a day is late, drift and volume checks that fire on
a planted shift (blocking only when configured), and webhook alerts for failed runs and checks."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from dagster._core.test_utils import freeze_time  # Dagster's own clock for its freshness checks

from orchestration.monitoring import check_failure_alert, freshness_checks, run_failure_alert
from resources.monitoring import MonitoringResource

UTC = dt.UTC
daily = dg.DailyPartitionsDefinition(start_date="2026-11-01")


def test_every_daily_asset_and_every_slice_asset_has_a_freshness_check():
    from orchestration.definitions import ALL_ASSETS, FRESHNESS_CHECKS, RECOMMENDATION
    from orchestration.definitions import daily as warehouse_daily

    checked = {k.asset_key for c in FRESHNESS_CHECKS for k in c.check_keys}
    daily_keys = {k for a in ALL_ASSETS if a.partitions_def == warehouse_daily for k in a.keys}
    slice_keys = set(RECOMMENDATION.resolve(ALL_ASSETS))
    assert {"window_features", "hbase_dwd_events", "conversion_model"} <= {
        k.to_user_string() for k in daily_keys
    }
    assert "user_recommendations" in {k.to_user_string() for k in slice_keys}
    assert daily_keys | slice_keys == checked


@dg.asset(partitions_def=daily)
def day_asset():
    return 1


@dg.asset
def slice_asset():
    return 2


def test_a_day_that_has_not_landed_by_its_deadline_fails_its_check():
    checks = freshness_checks([day_asset, slice_asset], daily, dg.AssetSelection.assets(slice_asset))
    job = dg.Definitions(
        assets=[day_asset, slice_asset],
        asset_checks=checks,
        jobs=[dg.define_asset_job("checks", selection=dg.AssetSelection.all_asset_checks())],
    ).resolve_job_def("checks")

    def evaluate(now) -> dict[str, tuple[bool, str]]:
        with freeze_time(now):
            r = job.execute_in_process(instance=instance)
        return {
            e.asset_key.to_user_string(): (e.passed, e.description) for e in r.get_asset_check_evaluations()
        }

    with dg.instance_for_test() as instance:
        with freeze_time(dt.datetime(2026, 12, 2, 5, 0, tzinfo=UTC)):  # the night's runs
            dg.materialize([day_asset], partition_key="2026-12-01", instance=instance)
            dg.materialize([slice_asset], instance=instance)
        on_time = evaluate(dt.datetime(2026, 12, 2, 7, 30, tzinfo=UTC))
        assert on_time["day_asset"][0] and on_time["slice_asset"][0], on_time
        late = evaluate(dt.datetime(2026, 12, 3, 7, 30, tzinfo=UTC))  # the next night did not run
        assert not late["day_asset"][0] and "2026-12-02" in late["day_asset"][1]
        assert not late["slice_asset"][0] and "overdue" in late["slice_asset"][1]


def _planted_asset():
    """A daily asset with the warehouse's drift and volume checks, over a frame whose day
    ``2026-11-06`` is planted with a shifted column and three times the rows."""
    from assets.features._shared import monitor, monitor_specs

    @dg.asset(partitions_def=daily, check_specs=monitor_specs("features", "volume", "psi", "label_rate"))
    def features(context, monitoring: MonitoringResource):
        rng = np.random.default_rng(int(context.partition_key[-2:]))
        planted = context.partition_key == "2026-11-06"
        n = 1500 if planted else 500
        frame = pd.DataFrame(
            {"steady": rng.normal(size=n), "moved": rng.normal(2.0 if planted else 0.0, 1, n)}
        )
        meta = yield from monitor(context, monitoring, "features", {"rows": n}, frame, label_rate=0.1)
        yield dg.Output(frame, metadata=meta)

    @dg.asset(partitions_def=daily)
    def downstream(features):
        return len(features)

    return features, downstream


@pytest.mark.parametrize("blocking", [False, True])
def test_a_planted_shift_fires_the_psi_and_volume_checks(blocking):
    features, downstream = _planted_asset()
    res = {"monitoring": MonitoringResource(blocking=blocking), "io_manager": dg.mem_io_manager}
    with dg.instance_for_test() as instance:
        for d in range(1, 6):  # five normal days: history for the check
            r = dg.materialize([features], partition_key=f"2026-11-0{d}", instance=instance, resources=res)
            ev = {e.check_name: e for e in r.get_asset_check_evaluations()}
            assert all(e.passed for e in ev.values()), ev
        assert ev["features_psi"].metadata["trailing_days"].value == 4
        assert ev["features_psi"].metadata["max_psi"].value < 0.25
        r = dg.materialize(
            [features, downstream],
            partition_key="2026-11-06",
            instance=instance,
            resources=res,
            raise_on_error=False,
        )
        ev = {e.check_name: e for e in r.get_asset_check_evaluations()}
    psi, volume = ev["features_psi"], ev["features_volume"]
    assert not psi.passed and psi.metadata["worst_column"].value == "moved"
    assert psi.metadata["max_psi"].value > 1 and psi.metadata["columns_over_threshold"].value == 1
    assert "moved" in psi.description and "steady" not in psi.description
    assert not volume.passed and volume.metadata["rows_change"].value == pytest.approx(2.0)
    assert ev["features_label_rate"].passed  # the rate did not move
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN
    assert psi.severity == volume.severity == severity
    # A warning lets the day through; a blocking check stops it before downstream reads it.
    assert r.success is (not blocking)
    ran = {e.asset_key.to_user_string() for e in r.get_asset_materialization_events()}
    assert ran == ({"features", "downstream"} if not blocking else set())


class _Receiver:
    """A local webhook: every POST's JSON body, in arrival order."""

    def __init__(self):
        self.payloads: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.payloads.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture()
def receiver():
    r = _Receiver()
    yield r
    r.close()


def test_failed_runs_and_checks_post_one_payload_each_and_successes_none(receiver):
    monitoring = MonitoringResource(webhook_url=receiver.url, dagster_ui_url="http://ui.example")

    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="scored")])
    def scored(context):
        bad = context.run.tags.get("plant") == "check"
        yield dg.Output(1)
        yield dg.AssetCheckResult(
            check_name="positive",
            passed=not bad,
            description="score went negative" if bad else None,
            metadata={"min_score": -1.0 if bad else 1.0},
        )

    @dg.asset
    def broken():
        raise ValueError("the source table is gone")

    repo = dg.Definitions(assets=[scored, broken]).get_repository_def()

    def tick(sensor, cursor=None) -> str:
        ctx = dg.build_sensor_context(
            instance=instance, cursor=cursor, repository_def=repo, resources={"monitoring": monitoring}
        )
        sensor.evaluate_tick(ctx)
        return ctx.cursor

    with dg.instance_for_test() as instance:
        # The first ticks only mark where to start.
        runs_cursor, checks_cursor = tick(run_failure_alert), tick(check_failure_alert)
        ok = dg.materialize([scored], instance=instance)
        flagged = dg.materialize([scored], instance=instance, tags={"plant": "check"})
        failed = dg.materialize([broken], instance=instance, raise_on_error=False)
        assert ok.success and flagged.success and not failed.success
        tick(run_failure_alert, runs_cursor)
        tick(check_failure_alert, checks_cursor)
    runs = [p for p in receiver.payloads if p["alert"] == "run_failure"]
    checks = [p for p in receiver.payloads if p["alert"] == "check_failure"]
    assert [p["run_id"] for p in runs] == [failed.run_id]
    assert runs[0]["assets"] == ["broken"] and "the source table is gone" in json.dumps(runs[0])
    assert runs[0]["link"] == f"http://ui.example/runs/{failed.run_id}"
    assert [(p["run_id"], p["asset"], p["check"]) for p in checks] == [(flagged.run_id, "scored", "positive")]
    assert checks[0]["message"] == "score went negative" and checks[0]["metadata"] == {"min_score": -1.0}
    assert checks[0]["link"] == f"http://ui.example/runs/{flagged.run_id}"


def test_the_check_alert_cursor_neither_repeats_nor_skips(receiver):
    monitoring = MonitoringResource(webhook_url=receiver.url)

    @dg.asset(check_specs=[dg.AssetCheckSpec("fails", asset="a")])
    def a():
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="fails", passed=False)

    repo = dg.Definitions(assets=[a]).get_repository_def()

    def tick(cursor=None) -> str:
        ctx = dg.build_sensor_context(
            instance=instance, cursor=cursor, repository_def=repo, resources={"monitoring": monitoring}
        )
        check_failure_alert.evaluate_tick(ctx)
        return ctx.cursor

    with dg.instance_for_test() as instance:
        before = dg.materialize([a], instance=instance)  # before the sensor started: not alerted
        cursor = tick()
        first = dg.materialize([a], instance=instance)
        cursor = tick(cursor)
        second = dg.materialize([a], instance=instance)
        third = dg.materialize([a], instance=instance)
        cursor = tick(cursor)
        tick(cursor)  # nothing new: nothing sent
    assert before.success
    assert [p["run_id"] for p in receiver.payloads] == [first.run_id, second.run_id, third.run_id]


def test_a_new_vectors_version_that_moved_its_neighbours_fails_the_drift_check():
    from assets.embeddings._shared import monitor_vectors

    rng = np.random.default_rng(0)
    ids, x = np.arange(400), rng.normal(size=(400, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    versions = {"first": x, "retrained": x @ np.linalg.qr(rng.normal(size=(8, 8)))[0], "shuffled": x[::-1]}

    @dg.asset(check_specs=[dg.AssetCheckSpec("vecs_drift", asset="vecs")])
    def vecs(context, monitoring: MonitoringResource):
        meta = yield from monitor_vectors(context, monitoring, "vecs", ids, versions[context.run.tags["v"]])
        yield dg.Output(1, metadata=meta)

    res = {"monitoring": MonitoringResource(), "io_manager": dg.mem_io_manager}
    out = {}
    with dg.instance_for_test() as instance:
        for v in versions:
            r = dg.materialize([vecs], instance=instance, resources=res, tags={"v": v})
            out[v] = r.get_asset_check_evaluations()[0]
    assert out["first"].passed and "no previous version" in out["first"].metadata["note"].value
    # A rotation of the whole space keeps every neighbour: the service sees no change.
    assert out["retrained"].passed and out["retrained"].metadata["top10_overlap"].value == 1.0
    assert out["retrained"].metadata["mean_cosine_shift"].value > 0.3
    bad = out["shuffled"]  # compared with the version before it, the rotated one
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.WARN
    assert bad.metadata["top10_overlap"].value < 0.2 and "top-10 neighbours" in bad.description
