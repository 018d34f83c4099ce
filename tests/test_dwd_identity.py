"""The DWD identity rule: one cell per distinct event, on any calendar day.

``make run`` once failed on 2026-11-27 because two distinct simulated events fell in the same
second and built the same qualifier; the ``dwd_events`` suite then stopped the warehouse. These
tests pin the rule of :func:`assets.features.layers.build_dwd` and run a year of simulated days
through it and the suite.
"""

from datetime import date, timedelta

import pandas as pd

from assets.features.layers import build_dwd, dwd_frame, mid_daily_values, parse_dwd
from assets.features.warehouse_config import load_warehouse_config
from assets.ingest.crm import CrmSpec, daily_events, population
from resources.validation import GreatExpectationsResource

LAYOUT = load_warehouse_config()

RAW = {"entity_type": "phone", "entity_id": "p1", "feature": "call", "line": "01", "detail": "{}"}


def _events(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{**RAW, **r} for r in rows])


def _scan(cells):
    """The cells as one entity's store row would return them (the newest cell per column)."""
    rows: dict[bytes, dict] = {}
    for row, col, val, ts in cells:
        rows.setdefault(row, {})[col] = (val, ts)
    return list(rows.items())


def test_a_year_of_days_passes_the_dwd_suite():
    """365 consecutive simulated days, ending today, build unique cells and pass ``dwd_events``."""
    spec = CrmSpec()
    pop = population(spec)
    end = date.today()
    frames, collisions, days_with_collisions = [], 0, []
    for i in range(365):
        day = end - timedelta(days=i)
        batch = build_dwd(daily_events(day, LAYOUT, spec, pop))
        assert batch.redeliveries == 0, day
        assert len(batch.cells) == batch.events_in, day  # every distinct event kept
        collisions += batch.collisions
        if batch.collisions:
            days_with_collisions.append(day)
        frames.append(dwd_frame(batch.cells))
    # The year must contain the case that broke make run, or this test proves nothing about it.
    assert collisions > 0 and days_with_collisions
    frame = pd.concat(frames, ignore_index=True)
    # Qualifiers carry the date, so one validation of the union is the validation of every day.
    summary = GreatExpectationsResource().validate(frame, "dwd_events")
    assert summary.success, summary.message()
    assert summary.n_rows == len(frame) > 365 * 5000


def test_the_day_that_failed_make_run():
    """2026-11-27 has distinct events on one qualifier: both are kept and the suite passes."""
    batch = build_dwd(daily_events(date(2026, 11, 27), LAYOUT))
    assert batch.collisions >= 1
    quals = [c[1] for c in batch.cells]
    assert len(set(zip([c[0] for c in batch.cells], quals))) == len(quals)
    assert any(b"#1" in q for q in quals)
    assert GreatExpectationsResource().validate(dwd_frame(batch.cells), "dwd_events").success


def test_a_redelivered_event_is_one_event():
    """The same event_id twice: one cell (the later delivery's), counted once by MID."""
    ev = _events(
        [
            {
                "event_id": "e1",
                "event_ts": "2021-05-08T10:13:58Z",
                "value": 108.0,
                "detail": '{"src":"offline"}',
            },
            {"event_id": "e2", "event_ts": "2021-05-08T11:00:00Z", "value": 30.0},
            {
                "event_id": "e1",
                "event_ts": "2021-05-08T10:13:58Z",
                "value": 108.0,
                "detail": '{"src":"realtime"}',
            },
        ]
    )
    batch = build_dwd(ev)
    assert (batch.events_in, batch.redeliveries, batch.collisions) == (3, 1, 0)
    by_q = {c[1]: c[2] for c in batch.cells}
    assert by_q == {
        b"d:call_01_20210508101358_108": b'{"event_id":"e1","src":"realtime"}',
        b"d:call_01_20210508110000_30": b'{"event_id":"e2"}',
    }
    mid = mid_daily_values(parse_dwd(_scan(batch.cells)), LAYOUT)
    assert dict(zip(mid["mid_feature"], mid["value"])) == {"call_cnt": 2.0, "call_sum": 138.0}
    # Building the same batch again gives the same cells: re-materializing overwrites, adds nothing.
    assert build_dwd(ev).cells == batch.cells


def test_distinct_events_in_the_same_second_both_survive():
    """Three distinct events with one qualifier: plain, #1, #2 ranked by event_id; MID counts 3."""
    same = {"event_ts": "2021-05-08T10:13:58Z", "value": 108.0}
    ev = _events(
        [
            {"event_id": "e9", **same},
            {"event_id": "e3", **same},
            {"event_id": "e5", **same},
            {"event_id": "e4", "event_ts": "2021-05-08T10:13:58Z", "value": 108.0, "line": "02"},
        ]
    )
    batch = build_dwd(ev)
    assert (batch.redeliveries, batch.collisions) == (0, 2)
    by_id = {c[2]: c[1] for c in batch.cells}
    assert by_id == {
        b'{"event_id":"e3"}': b"d:call_01_20210508101358_108",
        b'{"event_id":"e5"}': b"d:call_01_20210508101358_108#1",
        b'{"event_id":"e9"}': b"d:call_01_20210508101358_108#2",
        b'{"event_id":"e4"}': b"d:call_02_20210508101358_108",
    }
    # The order of delivery does not change which event gets which qualifier (offline and
    # real-time writers of the same events converge).
    assert sorted(build_dwd(ev.iloc[::-1]).cells) == sorted(batch.cells)
    mid = mid_daily_values(parse_dwd(_scan(batch.cells)), LAYOUT)
    got = {(f, line): v for f, line, v in zip(mid["mid_feature"], mid["line"], mid["value"])}
    assert got == {
        ("call_cnt", "01"): 3.0,
        ("call_sum", "01"): 324.0,
        ("call_cnt", "02"): 1.0,
        ("call_sum", "02"): 108.0,
    }
    assert GreatExpectationsResource().validate(dwd_frame(batch.cells), "dwd_events").success


def test_the_suite_still_stops_duplicate_cells():
    """The uniqueness expectation still bites: cells that repeat a (rowkey, qualifier) fail it."""
    batch = build_dwd(_events([{"event_id": "e1", "event_ts": "2021-05-08T10:13:58Z", "value": 1.0}]))
    summary = GreatExpectationsResource().validate(dwd_frame(batch.cells * 2), "dwd_events")
    assert not summary.success and "expect_compound_columns_to_be_unique" in summary.message()


def test_missing_details_build_plain_bodies():
    """An empty detail cell (NaN from a CSV) is no detail, not a crash."""
    ev = _events(
        [
            {"event_id": "e1", "event_ts": "2021-05-08T10:13:58Z", "value": 1.0, "detail": float("nan")},
            {"event_id": "e2", "event_ts": "2021-05-08T10:13:59Z", "value": 1.0, "detail": float("nan")},
        ]
    )
    assert [c[2] for c in build_dwd(ev).cells] == [b'{"event_id":"e1"}', b'{"event_id":"e2"}']
