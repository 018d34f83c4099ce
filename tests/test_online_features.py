"""Online feature reads: the latest window features and today's real-time counts of each entity,
read by row key from the store the warehouse wrote, through the function and through the API."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from assets.features.layers import app_cells, build_dwd, day_ms, table_specs
from assets.features.online import online_features
from resources.feature_store.embedded import EmbeddedStore
from serving.app import create_app
from serving.state import ServingState, StateHolder

TODAY = date(2026, 12, 3)
NOW_MS = day_ms(TODAY) + 15 * 3_600_000  # 15:00 UTC


def _events(day: date, rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    """Raw events (entity, feature, line, hour) of ``day``."""
    return pd.DataFrame(
        {
            "event_id": [f"{day}-{i}" for i in range(len(rows))],
            "entity_id": [r[0] for r in rows],
            "dim": "user",
            "feature": [r[1] for r in rows],
            "line": [r[2] for r in rows],
            "event_ts": [datetime(day.year, day.month, day.day, r[3]).isoformat() + "Z" for r in rows],
            "value": 1.0,
            "detail": "{}",
        }
    )


@pytest.fixture()
def store(tmp_path):
    s = EmbeddedStore(tmp_path / "store.sqlite")
    for spec in table_specs().values():
        s.create_table(spec)
    # Two days of window features: the newer day's values are the ones read.
    for day, scale in ((TODAY - timedelta(days=2), 1.0), (TODAY - timedelta(days=1), 2.0)):
        table = pd.DataFrame(
            {
                "entity_id": ["u1", "u2"],
                "dim": "user",
                "LOGIN_01_COUNT_7d": [3.0 * scale, 1.0 * scale],
                "VISIT_02_SUM_30d": [np.nan, 5.0 * scale],  # NaN: no cell, so absent from the read
            }
        )
        s.put_cells("app_features", app_cells(table, day))
    # Yesterday's events (not today's) and today's events so far.
    s.put_cells("dwd_events", build_dwd(_events(TODAY - timedelta(days=1), [("u1", "LOGIN", "01", 9)])).cells)
    today = [
        ("u1", "LOGIN", "01", 8),
        ("u1", "LOGIN", "01", 9),
        ("u1", "VISIT", "02", 10),
        ("u3", "LOGIN", "01", 11),
    ]
    s.put_cells("dwd_events", build_dwd(_events(TODAY, today)).cells)
    return s


def test_latest_features_and_todays_counts_per_entity(store):
    got = {r["entity_id"]: r for r in online_features(store, ["u1", "u2", "u3", "nobody"], now_ms=NOW_MS)}
    assert got["u1"] == {
        "entity_id": "u1",
        "found": True,
        "as_of": "2026-12-02",
        "features": {"LOGIN_01_COUNT_7d": 6.0},
        "realtime": {"LOGIN_01": 2, "VISIT_02": 1},
    }
    assert got["u2"]["features"] == {"LOGIN_01_COUNT_7d": 2.0, "VISIT_02_SUM_30d": 10.0}
    assert got["u2"]["realtime"] == {}
    # An entity with only today's events: counts, and no window features yet (not an error).
    assert (
        got["u3"]["found"] is False
        and got["u3"]["features"] == {}
        and got["u3"]["realtime"] == {"LOGIN_01": 1}
    )
    assert got["nobody"] == {
        "entity_id": "nobody",
        "found": False,
        "as_of": None,
        "features": {},
        "realtime": {},
    }
    # The order is the request's; the real-time read can be skipped.
    rows = online_features(store, ["nobody", "u1"], realtime=False, now_ms=NOW_MS)
    assert [r["entity_id"] for r in rows] == ["nobody", "u1"] and rows[1]["realtime"] == {}
    # Tomorrow, today's events are no longer "today".
    assert online_features(store, ["u1"], now_ms=NOW_MS + 86_400_000)[0]["realtime"] == {}


def test_the_api_reads_the_same_and_says_what_is_missing(store, monkeypatch):
    import assets.features.online as online

    monkeypatch.setattr(online, "_today_ms", lambda now=None: day_ms(TODAY))
    app = create_app(StateHolder(lambda: ServingState()), api_key="", feature_store=store)
    with TestClient(app) as c:
        r = c.post("/v1/features", json={"entity_ids": ["u1", "nobody", 42]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [e["entity_id"] for e in body["entities"]] == ["u1", "nobody", "42"]
        assert body["entities"][0]["features"] == {"LOGIN_01_COUNT_7d": 6.0}
        assert body["entities"][0]["realtime"] == {"LOGIN_01": 2, "VISIT_02": 1}
        assert body["entities"][1]["found"] is False and body["entities"][1]["features"] == {}
        assert r.headers["x-request-id"] == body["request_id"]
        assert c.post("/v1/features", json={"entity_ids": []}).status_code == 422
        assert c.post("/v1/features", json={"entity_ids": ["u1"], "extra": 1}).status_code == 422
    with TestClient(create_app(StateHolder(lambda: ServingState()), api_key="")) as c:
        r = c.post("/v1/features", json={"entity_ids": ["u1"]})
        assert r.status_code == 503 and "no feature store" in r.json()["detail"]


def test_a_store_the_warehouse_has_not_written_is_a_503(tmp_path):
    empty = EmbeddedStore(tmp_path / "empty.sqlite")
    with TestClient(create_app(StateHolder(lambda: ServingState()), api_key="", feature_store=empty)) as c:
        r = c.post("/v1/features", json={"entity_ids": ["u1"]})
    assert r.status_code == 503 and "has not written its features yet" in r.json()["detail"]
