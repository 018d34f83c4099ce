"""Hybrid KB search: PageRank prior, BM25 × PR, vector recall, union + cosine rerank."""

import numpy as np
import pandas as pd
import pytest

from assets.evaluation.faq import evaluate_kb_modes
from assets.retrieval.kb_search import HybridKbIndex, pagerank, similar_question_graph

DOCS = pd.DataFrame(
    {
        "doc_id": [10, 11, 12, 13],
        "title": ["reset password", "block card", "change address", "cancel subscription"],
        "questions": [["forgot my password"], ["my card was stolen"], ["i moved house"], ["stop my plan"]],
    }
)
# A toy encoder: intent axes; "lost" and "stolen" mean card, "moved" means address.
AXES = {
    "password": 0,
    "card": 1,
    "stolen": 1,
    "lost": 1,
    "address": 2,
    "moved": 2,
    "subscription": 3,
    "plan": 3,
}


def encode(texts):
    v = np.zeros((len(texts), 4), np.float32)
    for i, t in enumerate(texts):
        for w in t.split():
            if w in AXES:
                v[i, AXES[w]] += 1
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


def index():
    from assets.embeddings.text import document_vectors

    return HybridKbIndex.build(DOCS, document_vectors(encode, DOCS), tokenizer="char")


def test_pagerank_is_mean_one_and_favours_hubs():
    w = np.zeros((4, 4))
    w[[1, 2, 3], 0] = 1.0  # everyone links to 0
    w[0, 1] = 1.0
    pr = pagerank(w)
    assert pr.mean() == pytest.approx(1.0) and pr.argmax() == 0 and pr[0] > 1.5
    nx = pytest.importorskip("networkx")
    g = nx.DiGraph()
    g.add_weighted_edges_from([(i, j, w[i, j]) for i in range(4) for j in range(4) if w[i, j] > 0])
    ref = nx.pagerank(g, alpha=0.85)
    np.testing.assert_allclose(pr / 4, [ref[i] for i in range(4)], atol=1e-6)
    g = similar_question_graph(np.eye(3, dtype=np.float32) + 0.1, m=1)
    assert (g > 0).sum(axis=1).tolist() == [1, 1, 1] and np.diag(g).sum() == 0


def test_modes_and_union_rerank():
    idx = index()
    q = ["i lost it stolen", "forgot password"]
    bm, _ = idx.search(q, k=2, mode="bm25")
    assert bm[1, 0] == 10
    vec, _ = idx.search(q, encode(q), k=2, mode="vector")
    assert vec[0, 0] == 11  # "stolen" means card only to the encoder
    hy, sc = idx.search(q, encode(q), k=2, mode="hybrid")
    assert hy[0, 0] == 11 and hy[1, 0] == 10 and np.all(np.diff(sc, axis=1) <= 0)
    only_lexical, _ = idx.search(["zzz"], encode(["zzz"]), k=3, mode="bm25")
    assert (only_lexical == -1).all()  # no term matches: nothing, not noise
    with pytest.raises(ValueError, match="needs query vectors"):
        idx.search(q, mode="hybrid")
    with pytest.raises(ValueError, match="unknown mode"):
        idx.search(q, encode(q), mode="magic")


def test_pagerank_values_replace_the_graph_and_missing_is_one():
    from assets.embeddings.text import document_vectors

    idx = HybridKbIndex.build(DOCS, document_vectors(encode, DOCS), pagerank_values={10: 5.0})
    assert idx.pr.tolist() == [5.0, 1.0, 1.0, 1.0]


def test_evaluate_modes_reports_every_stage():
    test = pd.DataFrame(
        {"query": ["my card stolen", "moved address", "stop plan subscription"], "doc_id": [11, 12, 13]}
    )
    idx, qv = index(), encode(test["query"].tolist())
    res = evaluate_kb_modes(idx, test, qv)
    assert set(res) == {"bm25", "bm25_pr", "vector", "hybrid"}
    # Each stage's figures are that stage's own ranking scored, computed here the long way; and a
    # query whose entry is ranked second by one stage scores 0.5 there (the metric sees the rank).
    from assets.evaluation.faq import retrieval_metrics

    for mode in res:
        ranked, _ = idx.search(test["query"].tolist(), qv, k=10, mode=mode)
        assert res[mode] == pytest.approx(retrieval_metrics(ranked, test["doc_id"].to_numpy())), mode
    wrong = test.assign(
        doc_id=[11, 12, int(idx.search(["stop plan subscription"], qv[2:3], k=2, mode="bm25")[0][0, 1])]
    )
    assert evaluate_kb_modes(idx, wrong, qv)["bm25"]["mrr@10"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_rerank_inside_milvus_matches_the_in_process_rerank(tmp_path):
    """The hybrid's cosine rerank restricted to candidate ids, run inside Milvus (Lite)."""
    from assets.embeddings.text import document_vectors
    from assets.indexes.milvus_index import CollectionSpec, publish
    from assets.retrieval.kb_fusion import KbFusionParams
    from assets.retrieval.kb_search import rerank_in_milvus
    from resources.milvus import milvus_client, release

    idx = index()
    uri = str(tmp_path / "kb.db")
    client = milvus_client(uri)
    try:
        spec = CollectionSpec(alias="kb_docs", dim=4, index_type="FLAT")
        publish(
            client,
            spec,
            DOCS["doc_id"].to_numpy(),
            document_vectors(encode, DOCS),
            recall_sample=4,
            min_recall=0.5,
        )
        q = ["i lost it stolen", "forgot password", "moved"]
        qv = encode(q)
        cands = idx.candidates(q, qv, KbFusionParams(depth=2))
        got, _ = rerank_in_milvus(client, "kb_docs", spec, qv, cands, k=2)
        want, _ = idx.search(q, qv, k=2, mode="hybrid", fusion=KbFusionParams(depth=2))
        assert (got[:, 0] == want[:, 0]).all()
        assert all(set(g[g >= 0].tolist()) <= set(c.tolist()) for g, c in zip(got, cands))
    finally:
        release(uri)


class _ExactStore:
    """A dense store answering from arrays, as an exact Milvus collection would."""

    def __init__(self, ids, vecs):
        self.ids, self.vecs = np.asarray(ids), np.asarray(vecs, np.float32)

    def search(self, q, k):
        from assets.common.topk import topk

        pos, sc = topk(np.asarray(q, np.float32) @ self.vecs.T, k)
        return np.where(pos >= 0, self.ids[np.clip(pos, 0, None)], -1), sc

    def reconstruct(self, ids):
        where = {int(d): i for i, d in enumerate(self.ids)}
        return self.vecs[[where[int(d)] for d in ids]]


@pytest.mark.parametrize(
    "fusion",
    [
        ("weighted", "bm25_pr", 0.5, 2),
        ("weighted", "bm25", 0.9, 3),
        ("rrf", "bm25", 0.7, 2),
        ("rrf", "bm25_pr", 0.3, 4),
    ],
)
def test_a_dense_store_fuses_exactly_as_in_process(fusion):
    """The store path sees only the candidates' vectors: its fused ranking must still be the
    in-process one, scores included (normalisation and ranks are over the candidates)."""
    from assets.retrieval.kb_fusion import KbFusionParams

    f = KbFusionParams(*fusion)
    idx = index().with_fusion(f)
    store = idx.with_dense_store(_ExactStore(idx.doc_ids, idx.doc_vecs))
    q = ["i lost it stolen", "forgot password card", "moved my address plan", "zzz"]
    want_ids, want_sc = idx.search(q, encode(q), k=3, mode="hybrid")
    got_ids, got_sc = store.search(q, encode(q), k=3, mode="hybrid")
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_allclose(got_sc, want_sc, rtol=1e-5)
    # and the fusion is what ranks: the lexical stage alone, heavily weighted, can reorder.
    lexical_first, _ = idx.search(
        q, encode(q), k=3, mode="hybrid", fusion=KbFusionParams("weighted", "bm25", 1.0, 4)
    )
    bm, _ = idx.search(q, k=1, mode="bm25")
    assert lexical_first[1, 0] == bm[1, 0]
