"""Dynamic batching of a worker's answers (``serving/batching.py``) and the KB endpoint over it:
concurrent requests share one call, and each still gets exactly its own answer."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from serving.app import create_app
from serving.batching import MicroBatcher
from serving.state import StateHolder
from tests.support.serving_fixtures import build_state, kb_queries


def _recording(fail_on: str | None = None):
    calls: list[tuple] = []

    def answer(key, items):
        calls.append((key, list(items), threading.get_ident()))
        if fail_on is not None and fail_on in items:
            raise ValueError(f"cannot answer {fail_on}")
        return [f"{key}:{x}" for x in items]

    return answer, calls


def test_concurrent_items_share_one_call_and_get_their_own_results():
    answer, calls = _recording()
    b = MicroBatcher(answer)

    async def go():
        return await asyncio.gather(*(b.submit("k", f"q{i}") for i in range(10)))

    got = asyncio.run(go())
    assert got == [f"k:q{i}" for i in range(10)]
    assert [c[1] for c in calls] == [[f"q{i}" for i in range(10)]]
    assert b.batches == 1 and b.largest == 10


def test_keys_never_share_a_call_and_max_batch_bounds_each_call():
    answer, calls = _recording()
    sizes: list[int] = []
    b = MicroBatcher(answer, max_batch=3, on_batch=sizes.append)

    async def go():
        subs = [b.submit("a" if i % 2 else "b", i) for i in range(14)]
        return await asyncio.gather(*subs)

    got = asyncio.run(go())
    assert got == [f"{'a' if i % 2 else 'b'}:{i}" for i in range(14)]
    for key, items, _ in calls:
        assert items and all(("a" if i % 2 else "b") == key for i in items)
    assert sorted(i for _, items, _ in calls for i in items) == list(range(14))
    assert max(sizes) == 3 and sizes == [len(c[1]) for c in calls]
    assert sizes == [3, 3, 3, 3, 1, 1]  # first come, first served: a key's rest waits its turn


def test_a_failing_item_fails_only_its_own_request():
    answer, calls = _recording(fail_on="bad")
    b = MicroBatcher(answer)

    async def go():
        subs = [b.submit("k", x) for x in ("q0", "bad", "q2")]
        return await asyncio.gather(*subs, return_exceptions=True)

    ok0, bad, ok2 = asyncio.run(go())
    assert (ok0, ok2) == ("k:q0", "k:q2")
    assert isinstance(bad, ValueError) and "cannot answer bad" in str(bad)
    # the batch once, then each item alone
    assert [c[1] for c in calls] == [["q0", "bad", "q2"], ["q0"], ["bad"], ["q2"]]


def test_a_wrong_number_of_results_is_not_handed_out():
    def short(key, items):
        return ["only one"] if len(items) > 1 else [f"alone:{items[0]}"]

    b = MicroBatcher(short)

    async def go():
        return await asyncio.gather(*(b.submit("k", i) for i in range(3)))

    assert asyncio.run(go()) == ["alone:0", "alone:1", "alone:2"]


def test_local_batches_run_on_the_loop_and_remote_ones_on_a_worker_thread():
    answer, calls = _recording()
    b = MicroBatcher(answer)

    async def go():
        await b.submit("local", 1)
        await b.submit("remote", 2, remote=True)
        return threading.get_ident()

    loop_thread = asyncio.run(go())
    threads = {key: t for key, _, t in calls}
    assert threads["local"] == loop_thread and threads["remote"] != loop_thread


@pytest.fixture(scope="module")
def state():
    return build_state()


def test_kb_endpoint_batches_concurrent_queries_with_the_answers_of_one_at_a_time(state):
    """Twelve concurrent searches (hybrid and vector mixed) answer exactly as each asked alone,
    and at least one call answered several of them."""
    queries = kb_queries()["query"].tolist()[:12]
    bodies = [{"query": q, "k": 5, "mode": "hybrid" if i % 3 else "vector"} for i, q in enumerate(queries)]
    holder = StateHolder(lambda: state)
    holder.reload(force=True)
    app = create_app(holder, api_key="")

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            alone = [(await c.post("/v1/kb/search", json=b)).json() for b in bodies]
            calls_alone = app.state.kb_batches.batches
            together = await asyncio.gather(*(c.post("/v1/kb/search", json=b) for b in bodies))
        return alone, calls_alone, [r.json() for r in together]

    alone, calls_alone, together = asyncio.run(go())
    assert calls_alone == len(bodies)  # one at a time: a call each
    for a, t, body in zip(alone, together, bodies):
        assert [h["doc_id"] for h in t["hits"]] == [h["doc_id"] for h in a["hits"]], body
        assert [h["score"] for h in t["hits"]] == pytest.approx([h["score"] for h in a["hits"]], abs=1e-6)
        assert t["mode"] == body["mode"] and len(t["hits"]) == 5
    # each query's own answer: its ids are what the index gives that query alone
    ids, _ = state.kb_index.search(queries[:1], state.encode_texts(queries[:1]), k=5, mode="vector")
    assert [h["doc_id"] for h in together[0]["hits"]] == ids[0].tolist()
    assert app.state.kb_batches.batches - calls_alone < len(bodies)
    assert app.state.kb_batches.largest > 1


def test_remote_batches_overlap():
    """Network-bound batches run at once, as requests on their own threads did: two remote calls
    that each wait for the other both finish (one at a time, the first would time out)."""
    both_started = threading.Barrier(2, timeout=5)

    def answer(key, items):
        both_started.wait()
        return [f"{key}:{x}" for x in items]

    b = MicroBatcher(answer)

    async def go():
        return await asyncio.gather(b.submit("a", 1, remote=True), b.submit("b", 2, remote=True))

    assert asyncio.run(go()) == ["a:1", "b:2"]
