"""The recall API with the real app over a small real state: answers, versions, validation, reloads."""

import threading
import time

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.state import ServingState, StateHolder
from tests.support.serving_fixtures import build_state
from tests.support.serving_fixtures import kb_queries as kb_test

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def state():
    return build_state()


@pytest.fixture
def client(state):
    holder = StateHolder(lambda: state)
    with TestClient(create_app(holder, api_key="")) as c:
        yield c


def test_health_ready_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and set(r.json()["serving"]) == {"entities", "lookalike", "kb", "recommend"}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/similar", "/v1/lookalike", "/v1/kb/search", "/v1/recommend", "/healthz", "/readyz"} <= set(
        paths
    )


def test_similar_by_id_text_and_filters(client, state):
    eid = int(state.entity_profiles["entity_id"].iloc[0])
    r = client.post("/v1/similar", json={"entity_ids": [eid], "k": 5})
    body = r.json()
    assert (
        r.status_code == 200
        and body["versions"]["model_version"] == "1"
        and body["versions"]["alias"] == "champion"
    )
    hits = body["results"][0]
    assert (
        len(hits["ids"]) == 5
        and eid not in hits["ids"]
        and hits["scores"] == sorted(hits["scores"], reverse=True)
    )
    r = client.post("/v1/similar", json={"text": "银行 贷款 理财", "k": 3, "filters": {"location": "上海"}})
    assert r.status_code == 200
    p = state.entity_profiles.set_index("entity_id")
    got = r.json()["results"][0]["ids"]
    shanghai = set(p.index[p["location"] == "上海"].tolist())
    assert len(got) == min(3, len(shanghai)) > 0 and set(got) <= shanghai


def test_lookalike_and_kb(client, state):
    seeds = state.user_index.ids[:5].tolist()
    item = int(state.item_index.ids[0])
    r = client.post(
        "/v1/lookalike",
        json={
            "seed_user_ids": seeds,
            "seed_item_ids": [item],
            "size": 20,
            "exclude_user_ids": [1],
            "strategy": "all",
        },
    )
    assert r.status_code == 200
    auds = {a["strategy"]: a for a in r.json()["audiences"]}
    assert set(auds) == {"u2u", "i2u2u", "i2i2u"} and all(0 < len(a["user_ids"]) <= 20 for a in auds.values())
    for a in auds.values():  # real users, each once, best first
        assert set(a["user_ids"]) <= set(state.user_index.ids.tolist()) and len(set(a["user_ids"])) == len(
            a["user_ids"]
        )
        assert a["scores"] == sorted(a["scores"], reverse=True)
    assert not set(auds["u2u"]["user_ids"]) & ({1} | set(seeds))
    r = client.post("/v1/lookalike", json={"seed_user_ids": seeds, "strategy": "u2u", "size": 3})
    assert [a["strategy"] for a in r.json()["audiences"]] == ["u2u"]
    q = kb_test().iloc[0]
    for mode in ("hybrid", "bm25", "bm25_pr", "vector"):
        r = client.post("/v1/kb/search", json={"query": q["query"], "k": 3, "mode": mode})
        assert r.status_code == 200, r.text
        hits = [h["doc_id"] for h in r.json()["hits"]]
        assert len(hits) == 3 and r.json()["mode"] == mode and r.json()["versions"]["model"] == "recstack-kb"
        if (
            mode == "bm25"
        ):  # the test encoder is a toy (and shapes the PageRank prior); BM25 alone must find the entry
            assert int(q["doc_id"]) in hits


def test_kb_search_serves_the_second_stage_and_can_skip_it(state):
    """With a reranker chosen, ``hybrid`` answers in its order (here: one trained to put the first
    stage's last candidate first), says so, and ``rerank: false`` returns the first stage."""
    from dataclasses import replace

    import numpy as np

    from assets.retrieval.kb_rerank import KbReranker, KbRerankParams, first_stage

    q = kb_test()["query"].tolist()[:8]
    idx = state.kb_index
    qv = state.encode_texts(q)
    lexical = {s: idx.lexical_scores(q, s) for s in ("bm25", "bm25_pr")}
    pos, feats = first_stage(lexical, qv @ idx.doc_vecs.T, idx.fusion, idx.pr, q, idx.titles, 5)
    labels = np.zeros(pos.shape, np.float32)
    labels[:, -1] = 1
    model = KbReranker.fit(
        np.tile(feats, (5, 1, 1)), np.tile(labels, (5, 1)), KbRerankParams(depth=5, min_child_samples=2)
    )
    ranked = replace(state, kb_index=idx.with_reranker(model))
    with TestClient(create_app(StateHolder(lambda: ranked), api_key="")) as c:
        on = c.post("/v1/kb/search", json={"query": q[0], "k": 5}).json()
        off = c.post("/v1/kb/search", json={"query": q[0], "k": 5, "rerank": False}).json()
        vec = c.post("/v1/kb/search", json={"query": q[0], "k": 5, "mode": "vector"}).json()
        bad = c.post("/v1/kb/search", json={"query": q[0], "rerank": "yes"})
    assert on["reranked"] and not off["reranked"] and not vec["reranked"]
    first = [h["doc_id"] for h in off["hits"]]
    assert first == idx.doc_ids[pos[0]].tolist()
    assert on["hits"][0]["doc_id"] == first[-1] and sorted(h["doc_id"] for h in on["hits"]) == sorted(first)
    assert bad.status_code == 422


def test_lookalike_defaults_to_the_backtest_winner_the_seeds_allow(state):
    """No strategy named: the backtest's best that the seeds can run, with the reason, also in
    /readyz; with no backtest published, the first strategy the seeds allow."""
    from dataclasses import replace

    from serving.state import backtest_ranking

    ev = {
        "size": 100,
        "metrics": {
            "u2u": {"recall": 0.31},
            "i2u2u": {"recall": 0.12},
            "i2i2u": {"recall": 0.27},
            "most_active": {"recall": 0.05},
        },
    }
    ranking, reason = backtest_ranking(ev)
    assert ranking == ("u2u", "i2i2u", "i2u2u") and "u2u 0.310, i2i2u 0.270" in reason
    st = replace(state, lookalike_ranking=ranking, lookalike_reason=reason)
    seeds, item = state.user_index.ids[:3].tolist(), int(state.item_index.ids[0])
    with TestClient(create_app(StateHolder(lambda: st), api_key="")) as c:
        ready = c.get("/readyz").json()["serving"]["lookalike"]
        assert ready["default_strategy"] == "u2u" and ready["default_reason"] == reason
        r = c.post("/v1/lookalike", json={"seed_user_ids": seeds, "seed_item_ids": [item], "size": 5}).json()
        assert [a["strategy"] for a in r["audiences"]] == ["u2u"] and r["strategy_reason"] == reason
        r = c.post("/v1/lookalike", json={"seed_item_ids": [item], "size": 5}).json()
        assert [a["strategy"] for a in r["audiences"]] == ["i2i2u"]  # u2u needs seed users
        assert r["strategy_reason"].endswith("u2u needs seed users")
    with TestClient(create_app(StateHolder(lambda: state), api_key="")) as c:
        r = c.post("/v1/lookalike", json={"seed_item_ids": [item], "size": 5}).json()
        assert [a["strategy"] for a in r["audiences"]] == ["i2u2u"] and "no backtest" in r["strategy_reason"]


def test_recommend_is_the_batch_function_online(client, state):
    """The endpoint answers what :func:`recommend_users` answers for the user, in original ids,
    without the user's seen items or the blocklist; a user no model knows gets popularity."""
    import numpy as np

    from assets.retrieval.recommend import recommend_users

    rec = state.recommender
    user = int(rec.models["als"].user_ids[3])
    seen = set(rec.inputs.histories.pairs(np.array([user]))["item_id"].tolist())
    r = client.post("/v1/recommend", json={"user_id": str(user), "k": 10})
    body = r.json()
    assert r.status_code == 200 and body["reason"] == "fused" and len(body["items"]) == 10
    want = recommend_users(
        np.array([user]), rec.models, rec.inputs.fusion, 10, rec.inputs.popularity, rec.inputs.histories
    )
    assert [int(i["item_id"]) for i in body["items"]] == want.item_ids[0].tolist()
    assert not {int(i["item_id"]) for i in body["items"]} & seen
    first = body["items"][0]["item_id"]
    r = client.post("/v1/recommend", json={"user_id": user, "k": 10, "blocklist": [first]})
    assert first not in [i["item_id"] for i in r.json()["items"]]
    r = client.post("/v1/recommend", json={"user_id": str(user), "k": 10, "exclude_seen": False})
    assert r.status_code == 200 and len(r.json()["items"]) == 10
    for cold in ("987654321", "not-a-number"):
        r = client.post("/v1/recommend", json={"user_id": cold, "k": 5})
        body = r.json()
        assert r.status_code == 200 and body["reason"] == "popularity: unknown to the models"
        assert [int(i["item_id"]) for i in body["items"]] == rec.inputs.popularity.item_ids[:5].tolist()
        assert {i["source"] for i in body["items"]} == {"popularity"}
    assert body["sources"] == {"als": "1", "item2vec": "1"} and body["fusion"].startswith("rrf")


def test_recommend_filters_by_catalogue_attributes(client, state):
    """``item_attributes`` keeps only, or leaves out, items of catalogue categories: in the models'
    list and in the popularity fallback alike."""
    import numpy as np

    rec = state.recommender
    cat = rec.inputs.catalog
    category = {int(i): v for i, v in zip(cat.item_ids, cat.values)}
    chosen = ["c0", "c1", "c2", "c3"]
    user = int(rec.models["als"].user_ids[3])
    seen = set(rec.inputs.histories.pairs(np.array([user]))["item_id"].tolist())
    for who, reason, unseen in (
        (str(user), "fused", lambda i: i not in seen),
        ("not-a-number", "popularity: unknown to the models", lambda i: True),
    ):
        allowed = {i for i, c in category.items() if c in chosen and unseen(i)}
        only = client.post(
            "/v1/recommend",
            json={
                "user_id": who,
                "k": 10,
                "item_attributes": {"only": [{"attribute": "category", "values": chosen}]},
            },
        ).json()
        got = [int(i["item_id"]) for i in only["items"]]
        assert only["reason"] == reason and len(allowed) >= 5, (only, allowed)
        assert set(got) <= allowed and len(got) == min(10, len(allowed)), (got, allowed)
        out = client.post(
            "/v1/recommend",
            json={
                "user_id": who,
                "k": 10,
                "item_attributes": {"exclude": [{"attribute": "category", "values": chosen}]},
            },
        ).json()
        assert len(out["items"]) == 10 and not {category[int(i["item_id"])] for i in out["items"]} & set(
            chosen
        )
    plain = client.post("/v1/recommend", json={"user_id": str(user), "k": 10}).json()
    assert {category[int(i["item_id"])] for i in plain["items"]} - set(chosen)  # the filter did it


@pytest.mark.parametrize(
    "path,body,status,text",
    [
        ("/v1/similar", {"entity_ids": [987654321]}, 404, "unknown entity id"),
        ("/v1/similar", {"entity_ids": []}, 422, "at least 1"),
        ("/v1/similar", {}, 422, "Field required"),
        ("/v1/similar", {"entity_ids": [1], "text": "x"}, 422, "Extra inputs are not permitted"),
        ("/v1/similar", {"text": "   "}, 422, "String should match pattern"),
        ("/v1/similar", {"entity_ids": [True]}, 422, "must be an integer"),
        ("/v1/similar", {"entity_ids": ["7"]}, 422, "must be an integer"),
        ("/v1/similar", {"entity_ids": [1], "k": 0}, 422, "greater than or equal to 1"),
        ("/v1/similar", {"entity_ids": [1], "k": 101}, 422, "less than or equal to 100"),
        ("/v1/similar", {"entity_ids": [2**70]}, 422, "less than or equal to"),
        ("/v1/similar", {"entity_ids": [1], "filters": {"colour": "red"}}, 422, "Extra inputs"),
        ("/v1/similar", {"entity_ids": list(range(101))}, 422, "at most 100"),
        ("/v1/lookalike", {"seed_user_ids": [987654321]}, 404, "unknown seed id"),
        ("/v1/lookalike", {}, 422, "seed_user_ids and/or seed_item_ids"),
        ("/v1/lookalike", {"seed_item_ids": [1], "strategy": "u2u"}, 422, "u2u needs seed_user_ids"),
        ("/v1/lookalike", {"seed_user_ids": [1], "size": 0}, 422, "greater than or equal to 1"),
        ("/v1/kb/search", {"query": ""}, 422, "at least 1 character"),
        ("/v1/kb/search", {"query": "x", "mode": "psychic"}, 422, "'hybrid'"),
        ("/v1/kb/search", {"query": "x" * 1001}, 422, "at most 1000"),
        ("/v1/recommend", {}, 422, "Field required"),
        ("/v1/recommend", {"user_id": ""}, 422, "at least 1 character"),
        ("/v1/recommend", {"user_id": True}, 422, "must be an integer"),
        ("/v1/recommend", {"user_id": -3}, 422, "greater than or equal to 0"),
        ("/v1/recommend", {"user_id": "1", "k": 101}, 422, "less than or equal to 100"),
        (
            "/v1/recommend",
            {"user_id": "1", "item_attributes": {"only": [{"attribute": "colour", "values": ["red"]}]}},
            404,
            "unknown item attribute(s) ['colour']; the catalogue has ['category']",
        ),
        (
            "/v1/recommend",
            {"user_id": "1", "item_attributes": {"only": [{"attribute": "category", "values": []}]}},
            422,
            "at least 1",
        ),
        ("/v1/recommend", {"user_id": "1", "item_attributes": {"colour": {}}}, 422, "Extra inputs"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client, path, body, status, text):
    r = client.post(path, json=body)
    assert r.status_code == status and text in r.text, r.text


def test_malformed_json_is_a_422(client):
    r = client.post(
        "/v1/kb/search", content=b'{"query": "reset', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "json" in r.text.lower()


def test_api_key(state):
    with TestClient(create_app(StateHolder(lambda: state), api_key="s3cret")) as c:
        assert c.post("/v1/kb/search", json={"query": "reset"}).status_code == 401
        assert (
            c.post("/v1/kb/search", json={"query": "reset"}, headers={"X-API-Key": "wrong"}).status_code
            == 401
        )
        assert (
            c.post("/v1/kb/search", json={"query": "reset"}, headers={"X-API-Key": "s3cret"}).status_code
            == 200
        )
        assert c.get("/healthz").status_code == 200  # probes need no key


def test_not_ready_until_something_is_published():
    with TestClient(create_app(StateHolder(lambda: ServingState()), api_key="")) as c:
        assert c.get("/readyz").status_code == 503
        r = c.post("/v1/kb/search", json={"query": "reset"})
        assert r.status_code == 503 and "not published" in r.text


def test_reload_swaps_atomically_with_no_failed_request(state):
    """Four clients hammer /v1/similar through two swaps (v1 -> v2 -> v3). Each new state is built
    by the loader *while* requests run; every answer is a whole 200 of one version, and no client
    ever sees an older version after a newer one."""
    entity = int(state.entity_profiles["entity_id"].iloc[3])
    ok: list[tuple[int, str]] = []  # (thread, model_version) per successful answer, in order
    errors: list = []
    during_build: list[int] = []
    target = {"v": 1}

    def loader():
        if target["v"] == 1:
            return state
        before = len(ok)
        built = build_state(version=str(target["v"]))  # real work, while the old state serves
        during_build.append(len(ok) - before)
        return built

    holder = StateHolder(loader, lambda: (target["v"],), poll_seconds=0)
    with TestClient(create_app(holder, api_key="")) as c:
        stop = threading.Event()

        def hammer(n: int):
            while not stop.is_set():
                r = c.post("/v1/similar", json={"entity_ids": [entity], "k": 5})
                body = r.json()
                if r.status_code != 200 or len(body["results"][0]["ids"]) != 5:
                    errors.append((r.status_code, r.text[:200]))
                else:
                    ok.append((n, body["versions"]["model_version"]))

        def wait_for(version: str, count: int):
            deadline = time.monotonic() + 60
            while sum(v == version for _, v in ok) < count:
                assert time.monotonic() < deadline, f"fewer than {count} answers from version {version}"
                time.sleep(0.01)

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        try:
            wait_for("1", 100)
            assert holder.reload() is False  # nothing moved
            for v in (2, 3):
                target["v"] = v  # the alias moves
                assert holder.reload() is True
                wait_for(str(v), 100)
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert errors == []
    assert len(ok) >= 300 and {v for _, v in ok} == {"1", "2", "3"}
    assert (
        all(n > 0 for n in during_build) and len(during_build) == 2
    )  # requests were served during each build
    for n in range(4):  # per client, versions only move forward
        seen = [int(v) for t, v in ok if t == n]
        assert seen == sorted(seen)
    assert holder.state.versions["entities"].model_version == "3"


def test_a_vector_store_failure_is_a_503_to_retry_not_a_500(state):
    """A failure inside Milvus (seen under load: a transient "read binlog failed" on a query) is
    the store's, not the request's: 503 with Retry-After and the store's message, for a lookup by
    id and for a KB search alike; the state and other endpoints are untouched."""
    from dataclasses import replace

    from pymilvus.exceptions import MilvusException

    class FailingStore:
        native_filters = True

        def lookup(self, *args, **kwargs):
            raise MilvusException(code=65535, message="read binlog failed: service internal error")

        search = reconstruct = lookup

    broken = replace(
        state,
        entity_index=FailingStore(),
        kb_index=state.kb_index.with_dense_store(FailingStore()),
    )
    ids = state.entity_index.ids[:2].tolist()
    with TestClient(create_app(StateHolder(lambda: broken), api_key="")) as c:
        similar = c.post("/v1/similar", json={"entity_ids": ids, "k": 3})
        kb = c.post("/v1/kb/search", json={"query": kb_test()["query"].iloc[0], "k": 3})
        bm25 = c.post("/v1/kb/search", json={"query": kb_test()["query"].iloc[0], "k": 3, "mode": "bm25"})
    for r in (similar, kb):
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert "read binlog failed" in r.json()["detail"] and "retry" in r.json()["detail"]
    assert bm25.status_code == 200 and len(bm25.json()["hits"]) == 3  # BM25 needs no vector store
