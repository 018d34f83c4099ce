"""The KB second stage: it is adopted where its features carry what the first stage missed, not
where they do not; it round-trips without pickle; and the service's two paths (in process, a
dense store) rerank identically."""

import json
import string

import numpy as np

from assets.retrieval.kb_fusion import KbFusionParams, fuse_kb, reciprocal_ranks
from assets.retrieval.kb_rerank import FEATURES, KbReranker, KbRerankParams, choose_kb_rerank, first_stage


def _titles(n, rng):
    return np.array(["".join(rng.choice(list(string.ascii_lowercase), 8)) for _ in range(n)], object)


def _planted(titles, n_q, seed, titles_help):
    """Queries whose cosine finds the answer only sometimes; where ``titles_help`` the query also
    spells its answer's title (with noise), which only the reranker's text features see."""
    rng = np.random.default_rng(seed)
    n_d = len(titles)
    rel = rng.integers(0, n_d, n_q)
    cos = rng.normal(0, 1, (n_q, n_d)).astype(np.float32)
    cos[np.arange(n_q), rel] += 2.0
    lex = np.maximum(rng.normal(0, 1, (n_q, n_d)), 0).astype(np.float32)
    queries = [
        (titles[r][:5] if titles_help else "".join(rng.choice(list(string.ascii_lowercase), 5))) + " x"
        for r in rel
    ]
    return {"bm25": lex, "bm25_pr": lex}, cos, rel, queries


def test_adopted_where_its_features_help_and_it_lifts_new_queries():
    rng = np.random.default_rng(0)
    titles = _titles(60, rng)
    pr = np.ones(len(titles))
    lex, cos, rel, q = _planted(titles, 400, 1, titles_help=True)
    model, curve = choose_kb_rerank(lex, cos, rel, KbFusionParams(), pr, q, titles)
    assert model is not None and sum(r["chosen"] for r in curve) == 1
    row = next(r for r in curve if r["chosen"])
    assert row["gain"] > row["se"] > 0 and row["params"]["depth"] == model.params.depth
    # fresh queries, never trained on: the second stage lifts them well past the first
    lex, cos, rel, q = _planted(titles, 300, 2, titles_help=True)
    base = reciprocal_ranks(fuse_kb(lex["bm25"], cos, KbFusionParams(), 10)[0], rel).mean()
    pos, feats = first_stage(lex, cos, KbFusionParams(), pr, q, titles, model.params.depth)
    lifted = reciprocal_ranks(model.rerank(pos, feats)[0], rel).mean()
    assert lifted > base + 0.1, (base, lifted)


def test_kept_off_where_its_features_add_nothing():
    rng = np.random.default_rng(0)
    titles = _titles(60, rng)
    lex, cos, rel, q = _planted(titles, 400, 3, titles_help=False)
    model, curve = choose_kb_rerank(lex, cos, rel, KbFusionParams(), np.ones(len(titles)), q, titles)
    assert model is None and curve[0]["chosen"] and curve[0]["label"] == "first stage"
    assert all(r["gain"] <= max(r["se"], 0) for r in curve[1:]), curve


def test_round_trips_as_text_with_identical_scores():
    rng = np.random.default_rng(0)
    feats = rng.normal(0, 1, (50, 10, len(FEATURES))).astype(np.float32)
    labels = np.zeros((50, 10), np.float32)
    labels[np.arange(50), feats[:, :, 0].argmax(1)] = 1  # the first feature decides
    model = KbReranker.fit(feats, labels, KbRerankParams(depth=10, n_estimators=20, min_child_samples=5))
    d = json.loads(json.dumps(model.to_dict()))
    assert d["model"].startswith("tree") and d["params"]["depth"] == 10
    back = KbReranker.from_dict(d)
    np.testing.assert_array_equal(back.scores(feats), model.scores(feats))
    pos = np.tile(np.arange(10), (50, 1))
    order, sc = back.rerank(pos, feats)
    assert (order[:, 0] == feats[:, :, 0].argmax(1)).mean() > 0.9
    assert (np.diff(sc, axis=1) <= 0).all()


def test_index_reranks_in_process_and_over_a_dense_store_alike():
    from tests.test_kb_search import _ExactStore, encode, index

    idx = index()
    q = ["i lost it stolen", "forgot password card", "moved my address plan", "stop card plan"]
    qv = encode(q)
    bm25 = idx.bm25_scores(q)
    lexical = {"bm25": bm25, "bm25_pr": idx.lexical_scores(q, "bm25_pr")}
    cos = qv @ idx.doc_vecs.T
    pos, feats = first_stage(lexical, cos, KbFusionParams(), idx.pr, q, idx.titles, 4)
    labels = np.zeros(pos.shape, np.float32)
    labels[:, -1] = 1  # a model that puts the first stage's last candidate first
    model = KbReranker.fit(
        np.tile(feats, (10, 1, 1)), np.tile(labels, (10, 1)), KbRerankParams(depth=4, min_child_samples=2)
    )
    for fusion in (KbFusionParams(), KbFusionParams("weighted", "bm25", 0.5, 4)):
        ranked = idx.with_fusion(fusion).with_reranker(model)
        want_ids, want_sc = ranked.search(q, qv, k=3, mode="hybrid")
        first_ids, _ = ranked.search(q, qv, k=4, mode="hybrid", rerank=False)
        assert (want_ids[:, 0] == first_ids[:, -1]).all()  # the reranker did reorder
        plain, _ = idx.with_fusion(fusion).search(q, qv, k=4, mode="hybrid")
        np.testing.assert_array_equal(first_ids, plain)
        store = ranked.with_dense_store(_ExactStore(idx.doc_ids, idx.doc_vecs))
        got_ids, got_sc = store.search(q, qv, k=3, mode="hybrid")
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_allclose(got_sc, want_sc, rtol=1e-5)
        # the vector mode is never reranked
        np.testing.assert_array_equal(
            ranked.search(q, qv, k=3, mode="vector")[0], idx.search(q, qv, 3, "vector")[0]
        )
