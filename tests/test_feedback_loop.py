"""The feedback loop end to end: two versions serve, feedback comes back, the metrics are right,
and the promotion policy acts on them."""

from dataclasses import replace

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from assets.embeddings.factor_model import FactorModel
from assets.evaluation.online import online_metrics_table, versions_online
from assets.evaluation.online_assets import OnlineMetricsConfig, online_metrics
from assets.evaluation.promotion import OnlineRule, Policy, decide
from resources.event_log import EventLog, EventLogResource, read_events
from serving.app import create_app
from serving.state import Recommender, StateHolder
from tests.support.serving_fixtures import build_state

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def ab_state():
    """Champion ALS v1 and a challenger ALS v2 (other factors) each serving half the users."""
    st = build_state()
    champ = st.recommender
    als = champ.models["als"]
    rng = np.random.default_rng(5)
    other = FactorModel(
        als.user_ids,
        rng.normal(size=als.user_factors.shape).astype(np.float32),
        als.item_ids,
        rng.normal(size=als.item_factors.shape).astype(np.float32),
        {},
    )
    chall = Recommender({**champ.models, "als": other}, champ.inputs, {"als": "2", "item2vec": "1"})
    return replace(st, recommender=replace(champ, challenger=chall, challenger_share=0.5))


def _traffic(client, users, clicks_per_arm):
    """One request per user; the user clicks the first ``clicks_per_arm[als version]`` items and
    converts on the first. Returns the responses and the feedback posted."""
    responses, events = [], []
    for u in users:
        body = client.post("/v1/recommend", json={"user_id": str(u), "k": 5}).json()
        responses.append(body)
        n = clicks_per_arm[body["sources"]["als"]]
        for item in body["items"][:n]:
            events.append({"request_id": body["request_id"], "item_id": item["item_id"], "event": "click"})
        if n:
            events.append(
                {
                    "request_id": body["request_id"],
                    "item_id": body["items"][0]["item_id"],
                    "event": "conversion",
                }
            )
    for i in range(0, len(events), 500):
        r = client.post("/v1/feedback", json={"events": events[i : i + 500]})
        assert r.status_code == 200 and r.json() == {"accepted": len(events[i : i + 500])}
    return responses, events


@pytest.mark.parametrize("better", ["challenger", "champion"])
def test_two_versions_serve_and_the_policy_reads_their_traffic(ab_state, tmp_path, better):
    log = EventLog(str(tmp_path / "events"), flush_seconds=60)
    users = ab_state.recommender.models["als"].user_ids[:300].tolist()
    clicks = {"2": 2, "1": 1} if better == "challenger" else {"2": 1, "1": 3}
    with TestClient(create_app(StateHolder(lambda: ab_state), api_key="", event_log=log)) as c:
        responses, events = _traffic(c, users, clicks)
        # Feedback on nothing that was served counts as unmatched, not as a click.
        c.post("/v1/feedback", json={"events": [{"request_id": "0" * 32, "item_id": "1", "event": "click"}]})
    # (Closing the app flushed the log.)
    arms = pd.Series([r["sources"]["als"] for r in responses])
    assert 0.35 < (arms == "2").mean() < 0.65  # a stable split by user id, near the share
    again = [ab_state.recommender.for_user(str(u)).versions["als"] for u in users]
    assert again == arms.tolist()
    table, unmatched = online_metrics_table(
        read_events(str(tmp_path / "events"), "impressions"),
        read_events(str(tmp_path / "events"), "feedback"),
    )
    assert unmatched == 1
    rows = table.set_index(["endpoint", "model", "model_version"])
    for v in ("1", "2"):
        mine = [r for r in responses if r["sources"]["als"] == v]
        shown = sum(len(r["items"]) for r in mine)
        row = rows.loc[("recommend", "recstack-als", v)]
        assert row["requests"] == len(mine) and row["impressions"] == shown
        assert row["clicks"] == len(mine) * clicks[v] and row["conversions"] == len(mine)
        assert row["ctr"] == pytest.approx(len(mine) * clicks[v] / shown)
    i2v = rows.loc[("recommend", "recstack-item2vec", "1")]
    assert i2v["requests"] == len(users)  # one item2vec version shaped both arms
    # The policy: an offline win is promoted only if the online CTR agrees.
    policy = Policy(
        "recstack-als", "ndcg@10", 0.01, "x", "popularity", (), OnlineRule("recommend", "ctr", 0.05, 100)
    )
    online = versions_online(table, "recommend", "recstack-als", "1", "2")
    d = decide(policy, {"ndcg@10": 0.30}, {"ndcg@10": 0.20}, {"ndcg@10": 0.1}, online=online)
    assert d.promote == (better == "challenger"), d.reason
    assert "online ctr" in d.reason and ("but online" in d.reason) == (better == "champion")
    # Too little traffic: offline decides, and says so.
    few = replace(policy, online=replace(policy.online, min_impressions=10**6))
    d = decide(few, {"ndcg@10": 0.30}, {"ndcg@10": 0.20}, None, online=online)
    assert d.promote and "offline decides" in d.reason


def test_the_online_metrics_asset_reads_the_log(ab_state, tmp_path):
    log = EventLog(str(tmp_path / "events"), flush_seconds=60)
    with TestClient(create_app(StateHolder(lambda: ab_state), api_key="", event_log=log)) as c:
        rid = c.post("/v1/recommend", json={"user_id": "3", "k": 4}).json()["request_id"]
        item = c.post("/v1/kb/search", json={"query": "reset card", "k": 2}).json()
        c.post(
            "/v1/feedback",
            json={
                "events": [
                    {
                        "request_id": item["request_id"],
                        "item_id": str(item["hits"][0]["doc_id"]),
                        "event": "click",
                    }
                ]
            },
        )
    out = online_metrics(
        dg.build_asset_context(),
        config=OnlineMetricsConfig(),
        event_log=EventLogResource(root=str(tmp_path / "events")),
    )
    t = out.value.set_index(["endpoint", "model"])
    assert t.loc[("kb", "recstack-kb"), "clicks"] == 1 and t.loc[("kb", "recstack-kb"), "impressions"] == 2
    assert (
        t.loc[("recommend", "recstack-als"), "impressions"] == 4
        and t.loc[("recommend", "recstack-als"), "clicks"] == 0
    )
    assert rid and out.metadata["unmatched_feedback"].value == 0


def test_feedback_without_a_log_is_a_503(ab_state):
    with TestClient(create_app(StateHolder(lambda: ab_state), api_key="")) as c:
        r = c.post(
            "/v1/feedback", json={"events": [{"request_id": "a" * 32, "item_id": "1", "event": "click"}]}
        )
        assert r.status_code == 503 and "no event log" in r.text
        assert c.post("/v1/feedback", json={"events": []}).status_code == 422
