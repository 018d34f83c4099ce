"""The real-time path into DWD (Spark Structured Streaming): events landed as files are in DWD
within seconds, as the offline builder's cells; the offline day over the same events then
changes nothing and the MID counts are those of offline alone; a writer killed mid-batch and
restarted from its checkpoint loses and duplicates nothing; a batch the row checks refuse is kept
aside, whole, and nothing of it is written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from assets.features.layers import build_dwd, mid_daily_values, parse_dwd, table_specs
from assets.features.streaming import event_stream, start_realtime_dwd
from assets.features.warehouse_config import load_warehouse_config
from assets.ingest.crm import CrmSpec, daily_events
from recstack import settings
from resources.feature_store.embedded import EmbeddedStore

pytestmark = [pytest.mark.spark, pytest.mark.slow]
LAYOUT = load_warehouse_config()
DAY = date.today() - timedelta(days=1)
REPO = Path(__file__).resolve().parents[1]


def _store(path) -> EmbeddedStore:
    s = EmbeddedStore(path)
    for spec in table_specs().values():
        s.create_table(spec)
    return s


def _cells(store) -> dict:
    """``(row, column) -> (value, ts)`` of every visible DWD cell."""
    return {(r, c): tuple(v) for r, cells in store.scan("dwd_events") for c, v in cells.items()}


def _offline(events) -> dict:
    return {(r, c): (v, ts) for r, c, v, ts in build_dwd(events).cells}


def _land(folder: Path, name: str, events: pd.DataFrame) -> None:
    """Land a file atomically, as a producer must (written aside, then renamed in)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{name}.tmp"
    events.to_json(tmp, orient="records", lines=True)
    tmp.rename(folder / name)


def _wait(cond, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{what} not within {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def events():
    ev = daily_events(DAY, LAYOUT, CrmSpec(n_users=40, n_opportunities=20))
    assert len(ev) > 50
    return ev


def test_streamed_events_are_the_offline_cells_and_the_fusion_changes_nothing(spark, tmp_path, events):
    store, landing = _store(tmp_path / "store.sqlite"), tmp_path / "landing"
    batches: list[dict] = []
    query = start_realtime_dwd(
        spark,
        event_stream(spark, "files", str(landing)),
        LAYOUT,
        lambda: store,
        str(tmp_path / "checkpoint"),
        str(tmp_path / "rejected"),
        0.5,
        on_batch=batches.append,
    )
    try:
        half = len(events) // 2
        _land(landing, "part-0.json", events.iloc[:half])
        first_s = _wait(lambda: len(_cells(store)) > 0, 120, "the first micro-batch's cells")
        _land(landing, "part-1.json", events.iloc[half:])
        _wait(lambda: sum(b["events"] for b in batches) == len(events), 120, "the second micro-batch")
    finally:
        query.stop()
    assert first_s < 45, first_s  # seconds after landing (triggers of 0.5 s, and the first batch)
    offline = _offline(events)
    live = _cells(store)
    # Every streamed cell is an offline cell, value included; only a collision split across
    # micro-batches (the #k suffix ranks a day's events) can be missing until the day runs.
    assert live == {k: offline[k] for k in live}  # value and timestamp
    assert set(offline) - set(live) <= {k for k in offline if b"#" in k[1]}
    # The offline day over the same events: identical cells, none added, MID as offline alone.
    store.put_cells("dwd_events", build_dwd(events).cells)
    fused = _cells(store)
    assert fused == offline
    alone = _store(tmp_path / "offline.sqlite")
    alone.put_cells("dwd_events", build_dwd(events).cells)
    mid = mid_daily_values(parse_dwd(store.scan("dwd_events")), LAYOUT)
    mid_alone = mid_daily_values(parse_dwd(alone.scan("dwd_events")), LAYOUT)
    cols = list(mid.columns)
    pd.testing.assert_frame_equal(
        mid.sort_values(cols).reset_index(drop=True), mid_alone.sort_values(cols).reset_index(drop=True)
    )
    assert len(mid) > 0


def test_a_refused_micro_batch_is_kept_aside_and_writes_nothing(spark, tmp_path, events):
    store, landing, rejected = _store(tmp_path / "store.sqlite"), tmp_path / "landing", tmp_path / "rejected"
    batches: list[dict] = []
    query = start_realtime_dwd(
        spark, event_stream(spark, "files", str(landing)), LAYOUT, lambda: store,
        str(tmp_path / "checkpoint"), str(rejected), 0.5, on_batch=batches.append,
    )  # fmt: skip
    try:
        bad = events.iloc[:10].copy()
        bad.loc[bad.index[3], "feature"] = "TELEPORT"
        _land(landing, "bad.json", bad)
        _wait(lambda: any(b["rejected"] for b in batches), 60, "the refused batch")
        _land(landing, "good.json", events.iloc[10:20])
        _wait(lambda: sum(b["events"] for b in batches) == 20, 60, "the next batch")
    finally:
        query.stop()
    kept = json.loads(next(rejected.glob("batch-*.json")).read_text())
    assert len(kept["rows"]) == 10 and "unknown feature" in kept["problems"][0]
    assert f"event_id={bad['event_id'].iloc[3]}" in kept["problems"][0]
    assert _cells(store) == _offline(events.iloc[10:20])


def test_a_writer_killed_mid_batch_resumes_from_its_checkpoint_losing_and_duplicating_nothing(
    tmp_path, events
):
    landing, ckpt, rejected, db = (
        str(tmp_path / n) for n in ("landing", "checkpoint", "rejected", "s.sqlite")
    )
    _land(Path(landing), "part-0.json", events)
    env = settings.child_env()
    crash = subprocess.run(
        [sys.executable, "-m", "tests.support.realtime_crash", landing, ckpt, rejected, db],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert crash.returncode == 9, crash.stderr[-2000:]
    store = EmbeddedStore(db)
    written = len(_cells(store))
    offline = _offline(events)
    assert 0 < written < len(offline)  # killed in the middle: half the batch in, no commit
    # Restarted (the product's entry point): the batch runs again from the checkpoint.
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.realtime", "--landing", landing, "--checkpoint", ckpt,
         "--rejected", rejected, "--store", db, "--trigger-seconds", "0.5"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait(lambda: len(_cells(store)) == len(offline) or proc.poll() is not None, 240, "the resumed batch")
        time.sleep(2)  # and nothing more arrives
        assert proc.poll() is None, proc.stderr.read()[-2000:]
    finally:
        proc.terminate()
        proc.wait(60)
    assert _cells(store) == offline
    # No cell twice: every stored version is one offline cell.
    import sqlite3

    with sqlite3.connect(db) as raw:  # every version the store holds, not only the newest
        n_versions = raw.execute("SELECT COUNT(*) FROM t_dwd_events").fetchone()[0]
    assert n_versions == len(offline)
