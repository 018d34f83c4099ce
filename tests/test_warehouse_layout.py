"""The warehouse's layout is data: a line, an event type, a dimension and a longer window are added
by editing data files only, and the daily chain computes them; a bad layout is stopped, naming the
entry, before any cell is written."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from assets.features.layers import parse_mid
from assets.features.warehouse_config import (
    DEFAULT_PATH,
    WarehouseConfigError,
    load_warehouse_config,
    parse_warehouse_config,
)
from resources.feature_store.embedded import EmbeddedStore
from resources.feature_store.resource import CrmSourceResource, WarehouseLayoutResource
from tests.test_window_kernel import reference

DATA = DEFAULT_PATH.parent
END = date.today() - timedelta(days=1)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _doc() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text())


def test_default_layout_is_the_practice():
    c = load_warehouse_config()
    assert c.lines == ("01", "02") and c.dims == ("user", "phone") and c.history_days == 180
    assert c.mid_features == (
        "call_cnt",
        "call_sum",
        "login_cnt",
        "login_sum",
        "post_cnt",
        "post_sum",
        "click_cnt",
        "click_sum",
    )
    assert c.event_dims == {"call": "phone", "login": "user", "post": "user", "click": "user"}
    assert [(t.name, t.lines, t.tag) for t in c.tasks] == [
        ("conversion", ("01", "02"), b"t:target_conversion")
    ]


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d["lines"].append("3"), r"lines\[2\]: '3' is not two digits"),
        (
            lambda d: d["events"].append({"name": "visit", "dim": "shop", "aggs": ["cnt"]}),
            r"events\[4\] \(name='visit'\): unknown dim 'shop'; known: \['user', 'phone'\]",
        ),
        (
            lambda d: d["events"][0].update(aggs=["cnt", "p99"]),
            r"events\[0\] \(name='call'\): aggs .* must be distinct values",
        ),
        (
            lambda d: d["events"][1].update(name="Log-in"),
            r"events\[1\] \(name='Log-in'\): name must be lower-case letters",
        ),
        (
            lambda d: d["dimensions"].append({"name": "staff", "link": "owner", "pool": "robots"}),
            r"dimensions\[2\] \(name='staff'\): unknown pool 'robots'",
        ),
        (
            lambda d: d["tasks"][0].update(lines=["01", "09"]),
            r"tasks\[0\] \(name='conversion'\): lines .* must be a non-empty list",
        ),
        (lambda d: d.update(history_days=0), r"history_days must be a positive integer"),
        (lambda d: d.update(windows=[3]), r"unknown key\(s\) \['windows'\]"),
    ],
)
def test_a_bad_layout_names_the_entry(edit, message):
    doc = _doc()
    edit(doc)
    with pytest.raises(WarehouseConfigError, match=message):
        parse_warehouse_config(doc)


def test_a_bad_layout_file_stops_before_anything_is_written(tmp_path):
    from assets.features.warehouse_assets import raw_events
    from resources.validation import GreatExpectationsResource

    bad = tmp_path / "warehouse.yaml"
    doc = _doc()
    doc["events"][2]["dim"] = "shop"
    bad.write_text(yaml.safe_dump(doc))
    ctx = dg.build_asset_context(partition_key="2026-03-01")
    with pytest.raises(dg.Failure) as e:
        list(
            raw_events(
                ctx,
                crm=CrmSourceResource(n_users=20, n_opportunities=5),
                gx=GreatExpectationsResource(),
                warehouse_layout=WarehouseLayoutResource(path=str(bad)),
            )
        )
    assert (
        "warehouse.yaml: warehouse config events[2] (name='post'): unknown dim 'shop'" in e.value.description
    )
    assert e.value.allow_retries is False


def _extend_by_data_only(data: Path) -> list[str]:
    """Line 03, the `visit` event on users, a sales-staff dimension with a `follow` event, and a
    365-day window: edits of the two data files; returns the files git sees changed."""
    subprocess.run(["git", "init", "-q"], cwd=data, check=True)
    subprocess.run(["git", "add", "."], cwd=data, check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "packaged"],
        cwd=data,
        check=True,
    )
    doc = yaml.safe_load((data / "warehouse.yaml").read_text())
    doc["history_days"] = 365
    doc["lines"].append("03")
    doc["dimensions"].append({"name": "staff", "link": "owner", "pool": "staff"})
    doc["events"] += [
        {
            "name": "visit",
            "dim": "user",
            "aggs": ["cnt", "max"],
            "rate": 0.8,
            "value": {"kind": "integers", "low": 1, "high": 9},
        },
        {
            "name": "follow",
            "dim": "staff",
            "aggs": ["cnt"],
            "rate": 4.0,
            "value": {"kind": "constant", "value": 1},
        },
    ]
    doc["tasks"][0]["lines"].append("03")
    (data / "warehouse.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with (data / "feature_dictionary.csv").open("a") as f:
        f.write("user,8,visit_cnt,visits per day,COUNT|SUM|MAX,7|365,visit_cnt,sum\n")
        f.write("user,9,visit_depth,deepest visit per day,MAX|MEAN,30|365,visit_max,max\n")
        f.write("staff,10,follow_cnt,opportunities followed per day,COUNT|SUM,7|365,follow_cnt,mean\n")
    out = subprocess.run(["git", "diff", "--name-only"], cwd=data, capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


@pytest.mark.slow
def test_a_line_an_event_a_dimension_and_a_year_window_by_data_alone(recstack_home, tmp_path):
    from orchestration.definitions import build_definitions
    from orchestration.run_local import ingest_chain

    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    assert _extend_by_data_only(data) == ["feature_dictionary.csv", "warehouse.yaml"]
    layout = WarehouseLayoutResource(path=str(data / "warehouse.yaml"))
    defs = build_definitions(
        "local", {"crm": CrmSourceResource(n_users=120, n_opportunities=80), "warehouse_layout": layout}
    )
    dict_config = {
        **QUIET,
        "ops": {"feature_dictionary": {"config": {"path": str(data / "feature_dictionary.csv")}}},
    }
    with dg.DagsterInstance.get() as instance:
        assert (
            defs.resolve_job_def("feature_dictionary_load")
            .execute_in_process(instance=instance, run_config=dict_config)
            .success
        )
        job = defs.resolve_job_def("feature_warehouse_daily")
        for i in (2, 1, 0):
            res = job.execute_in_process(
                instance=instance,
                partition_key=(END - timedelta(days=i)).isoformat(),
                asset_selection=None if i == 0 else ingest_chain(),
                run_config=QUIET,
                raise_on_error=False,
            )
            assert res.success, [
                e.step_failure_data.error.message for e in res.all_events if e.is_step_failure
            ]
    store = EmbeddedStore(recstack_home / "feature_store" / "store.sqlite")
    dwd = {q.decode() for _, cells in store.scan("dwd_events") for q in cells}
    assert any(q.startswith("d:visit_03_") for q in dwd) and any(q.startswith("d:follow_") for q in dwd)
    staff_rows = [r for r, _ in store.scan("dwd_events") if r.decode().endswith("|s000") or b"s0" in r]
    assert staff_rows, "no DWD row of a staff member"
    mid_q = {q.decode() for _, cells in store.scan("mid_daily") for q in cells}
    stamp = f"{END:%Y%m%d}"
    for q in (
        f"m:visit_cnt_03_{stamp}",
        f"m:visit_max_01_{stamp}",
        f"m:follow_cnt_02_{stamp}",
        "t:target_conversion",
    ):
        assert q in mid_q, q
    # Window features of the new line, event, dimension and window, against the reference.
    wf = res.output_for_node("window_features")
    for col in (
        "visit_cnt_03_COUNT_365d",
        "visit_depth_02_MAX_365d",
        "follow_cnt_01_SUM_365d",
        "call_cnt_03_SUM_7d",
    ):
        assert col in wf.columns, col
    assert set(wf["dim"]) == {"user", "phone", "staff"}
    long, _ = parse_mid(store.scan("mid_daily", columns=[b"m", b"t"], tag=b"t:target_conversion"), END)
    checked = 0
    for ent, dim, col, src, line, func, w in [
        (None, "user", "visit_cnt_03_COUNT_365d", "visit_cnt", "03", "COUNT", 365),
        (None, "user", "visit_cnt_03_MAX_7d", "visit_cnt", "03", "MAX", 7),
        (None, "user", "visit_depth_01_MEAN_365d", "visit_max", "01", "MEAN", 365),
        (None, "staff", "follow_cnt_02_SUM_365d", "follow_cnt", "02", "SUM", 365),
    ]:
        for ent in wf.loc[wf["dim"] == dim, "entity_id"].head(15):
            s = long[(long["entity_id"] == ent) & (long["mid_feature"] == src) & (long["line"] == line)]
            exp = reference(dict(zip(s["offset"], s["value"])), w, func)
            got = float(wf.loc[wf["entity_id"] == ent, col].iloc[0])
            assert (np.isnan(exp) and np.isnan(got)) or got == pytest.approx(exp), (ent, col)
            checked += 1
    assert (
        checked == 60 and wf["follow_cnt_02_SUM_365d"].sum() > 0 and wf["visit_cnt_03_COUNT_365d"].sum() > 0
    )
    # The LibSVM export carries the new columns, rolled up to opportunities (staff through `owner`).
    manifest = res.output_for_node("libsvm_datasets")
    index = pd.read_csv(Path(manifest["full"]).with_name("full.index.tsv"), sep="\t", names=["idx", "name"])
    for col in ("visit_cnt_03_COUNT_365d", "follow_cnt_01_SUM_365d", "visit_depth_03_MAX_30d"):
        assert col in set(index["name"]), col
    follow_idx = int(index.loc[index["name"] == "follow_cnt_01_SUM_365d", "idx"].iloc[0])
    text = Path(manifest["full"]).read_text()
    assert f" {follow_idx}:" in text  # owners' activity reaches the opportunities' rows
