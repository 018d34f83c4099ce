"""KB fusion: the arithmetic of each method, and the validation choice that keeps the vector ranking
unless the lexical stage is confirmed to help."""

import numpy as np

from assets.retrieval.kb_fusion import KbFusionParams, choose_kb_fusion, fuse_kb, kb_fusion_grid


def test_each_method_ranks_by_its_formula():
    cos = np.array([[0.9, 0.8, 0.1, 0.0]], np.float32)
    lex = np.array([[0.0, 2.0, 4.0, 0.0]], np.float32)  # doc 0 and 3 did not match lexically
    assert fuse_kb(lex, cos, KbFusionParams(), 4)[0].tolist() == [[0, 1, 2, 3]]
    # weighted, w=0.6, depth 2: candidates {0, 1} (vector) ∪ {2, 1} (lexical); doc 3 is neither.
    # cos min-max over {0,1,2}: 1, .875, 0; lex over the matched {1,2}: 0, 1 (doc 0: 0).
    pos, sc = fuse_kb(lex, cos, KbFusionParams("weighted", "bm25", 0.6, 2), 4)
    assert pos.tolist() == [[2, 0, 1, -1]]
    np.testing.assert_allclose(sc[0, :3], [0.6, 0.4, 0.4 * 0.875], rtol=1e-6)
    # rrf, w=0.5, k=60: cos ranks 1,2,3; lex ranks doc2=1, doc1=2, doc0 none.
    pos, sc = fuse_kb(lex, cos, KbFusionParams("rrf", "bm25", 0.5, 2, rrf_k=60), 3)
    want = {0: 0.5 / 61, 1: 0.5 / 62 + 0.5 / 62, 2: 0.5 / 63 + 0.5 / 61}
    assert pos[0].tolist() == sorted(want, key=lambda d: -want[d])
    np.testing.assert_allclose(sc[0], sorted(want.values(), reverse=True), rtol=1e-6)


def _planted(n_q=400, n_d=60, lexical_helps=True, seed=0):
    rng = np.random.default_rng(seed)
    rel = rng.integers(0, n_d, n_q)
    cos = rng.normal(0, 1, (n_q, n_d)).astype(np.float32)
    cos[np.arange(n_q), rel] += 1.5  # the vector stage finds the answer often, not always
    lex = np.maximum(rng.normal(0, 1, (n_q, n_d)), 0).astype(np.float32)
    if lexical_helps:
        lex[np.arange(n_q), rel] += 2.0  # an independent second opinion
    noise = np.maximum(rng.normal(0, 1, lex.shape), 0).astype(np.float32)
    return {"bm25": lex, "bm25_pr": noise}, cos, rel


def test_validation_adopts_fusion_only_where_the_lexical_stage_helps():
    chosen, curve = choose_kb_fusion(*_planted(lexical_helps=True))
    assert chosen.method != "vector" and sum(r["chosen"] for r in curve) == 1
    assert chosen.lexical == "bm25"  # the stage that carries the signal, not the noisy one
    row = next(r for r in curve if r["chosen"])
    assert row["gain"] > row["se"] > 0 and row["label"] == chosen.label()
    chosen, curve = choose_kb_fusion(*_planted(lexical_helps=False))
    assert chosen == KbFusionParams() and curve[0]["chosen"]
    assert len(curve) == len(kb_fusion_grid())
    # Noise can still edge past the default on a few queries: a gain inside one standard error is
    # no gain. Find such a draw (small sets make one likely) and see the default kept.
    for seed in range(50):
        chosen, curve = choose_kb_fusion(*_planted(n_q=40, lexical_helps=False, seed=seed))
        best = max(curve, key=lambda r: r["mrr@10"])
        if best["gain"] > 0:
            break
    assert best["gain"] > 0 and best["gain"] <= best["se"], best
    assert chosen == KbFusionParams()
