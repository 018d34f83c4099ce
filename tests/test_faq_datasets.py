"""FAQ evaluation on the real sets (skipped without ../shared/data): loaders, holdout, BM25, and a
small two-tower that must learn BANKING77 intents. The full comparison is benchmarks/faq_retrieval.py."""

import numpy as np
import pandas as pd
import torch

from assets.embeddings.two_tower import TwoTowerParams, _drop, train_two_tower
from assets.evaluation.faq import (
    bm25_rank,
    evaluate_encoder,
    holdout,
    load_afqmc,
    load_banking77,
    retrieval_metrics,
)
from tests.conftest import shared_dataset


def test_holdout_leaks_no_validation_query():
    docs = pd.DataFrame(
        {"doc_id": [0, 1], "title": ["card", "pin"], "questions": [["a", "b", "c"], ["d", "e", "f"]]}
    )
    # Each query is paired with its title and with another question of its entry.
    train = pd.DataFrame(
        {
            "query": list("abcdef") * 2,
            "positive": ["card"] * 3 + ["pin"] * 3 + list("bcaefd"),
            "doc_id": [0, 0, 0, 1, 1, 1] * 2,
        }
    )
    tr, vdocs, vq = holdout({"train": train, "train_docs": docs}, fraction=0.34, seed=0)
    held = set(vq["query"])
    assert len(held) == 2 and not held & set(tr["query"]) and not held & set(tr["positive"])
    kept = ~train["query"].isin(held) & ~train["positive"].isin(held)
    assert len(tr) == kept.sum() < 12 - 4  # more than the held-out queries' own 4 pairs are gone
    assert not held & {q for qs in vdocs["questions"] for q in qs}
    assert docs["questions"].map(len).sum() == 6  # the caller's table is untouched


def test_token_dropout_keeps_padding():
    ids = torch.tensor([[5, 6, 7, 0, 0]] * 200)
    out = _drop(ids, 0.5)
    assert (out[:, 3:] == 0).all() and set(out[:, :3].unique().tolist()) <= {1, 5, 6, 7}
    assert 0.3 < (out[:, :3] == 1).float().mean() < 0.7
    assert torch.equal(_drop(ids, 0.0), ids)


def okapi_bm25_scores(
    doc_tokens: list[list[str]], query_tokens: list[list[str]], k1: float = 1.5, b: float = 0.75
):
    """An independent BM25 (Robertson/Sparck Jones with Lucene's idf, log(1 + (N - df + .5) / (df + .5))),
    written from the formula for this test only: each query token adds idf * tf * (k1 + 1) /
    (tf + k1 * (1 - b + b * len / avglen)). Yields every document's score, one query at a time."""
    import math
    from collections import Counter

    n = len(doc_tokens)
    lens = np.array([len(d) for d in doc_tokens], float)
    postings: dict[str, list[tuple[int, int]]] = {}
    for j, d in enumerate(doc_tokens):
        for t, f in Counter(d).items():
            postings.setdefault(t, []).append((j, f))
    norm = k1 * (1 - b + b * lens / lens.mean())
    for q in query_tokens:
        s = np.zeros(n)
        for t in q:
            docs_f = postings.get(t, [])
            idf = math.log(1 + (n - len(docs_f) + 0.5) / (len(docs_f) + 0.5))
            for j, f in docs_f:
                s[j] += idf * f * (k1 + 1) / (f + norm[j])
        yield s


def _check_against_reference(docs: pd.DataFrame, test: pd.DataFrame) -> float:
    """MRR@10 of the reference, after checking that bm25_rank's top 10 is the reference's top 10
    up to ties (the reference's scores of bm25_rank's picks equal its own best scores, rank by rank)."""
    from assets.embeddings.text import tokenize
    from assets.evaluation.faq import doc_texts

    dt = [tokenize(t, "char") or ["[UNK]"] for t in doc_texts(docs)]
    qt = [tokenize(q, "char") or ["[UNK]"] for q in test["query"]]
    ids = docs["doc_id"].to_numpy()
    pos = pd.Series(np.arange(len(ids)), index=ids)
    got = bm25_rank(docs, test["query"].tolist())
    ranked, disagree = [], 0
    for row, s in zip(got, okapi_bm25_scores(dt, qt)):
        best = np.sort(s)[::-1][:10]
        disagree += not np.allclose(s[pos[row].to_numpy()], best, rtol=1e-4, atol=1e-6)
        ranked.append(ids[np.argsort(-s, kind="stable")[:10]])
    assert disagree == 0, f"{disagree} of {len(got)} queries ranked differently from the reference"
    return retrieval_metrics(np.array(ranked), test["doc_id"].to_numpy())["mrr@10"]


def test_banking77_and_afqmc_loaders_and_bm25_baseline():
    """The BM25 baseline agrees with an independent implementation of the formula on both sets."""
    b = load_banking77(shared_dataset("banking77"))
    assert len(b["docs"]) == 77 and len(b["test"]) == 3080 and b["train"]["doc_id"].between(0, 76).all()
    m = retrieval_metrics(bm25_rank(b["docs"], b["test"]["query"].tolist()), b["test"]["doc_id"].to_numpy())
    assert abs(m["mrr@10"] - _check_against_reference(b["docs"], b["test"])) < 1e-4
    assert 0.85 < m["mrr@10"] < 0.95  # and what the README calls BM25 on BANKING77 (0.8954)
    a = load_afqmc(shared_dataset("afqmc"))
    assert a["test"]["doc_id"].notna().all() and a["train_docs"]["doc_id"].max() == a["train"]["doc_id"].max()
    m = retrieval_metrics(bm25_rank(a["docs"], a["test"]["query"].tolist()), a["test"]["doc_id"].to_numpy())
    # Many short Chinese queries tie: the two rankings agree up to ties, so MRR within 2e-3.
    assert abs(m["mrr@10"] - _check_against_reference(a["docs"], a["test"])) < 2e-3


def test_small_two_tower_learns_banking77_intents():
    b = load_banking77(shared_dataset("banking77"))
    keep = set(range(10))  # 10 intents, 40 training queries each: seconds, not minutes
    docs = b["docs"][b["docs"]["doc_id"].isin(keep)].copy()
    docs["questions"] = docs["questions"].map(lambda qs: qs[:40])
    mine = {q for qs in docs["questions"] for q in qs}
    data = {"train": b["train"][b["train"]["query"].isin(mine)], "train_docs": docs}
    test = b["test"][b["test"]["doc_id"].isin(keep)]
    tr, vdocs, vq = holdout(data)
    p = TwoTowerParams(
        dim=64,
        out_dim=64,
        batch_size=10,
        max_epochs=6,
        lr=2e-3,
        max_len=32,
        val_fraction=0.0,
        token_dropout=0.1,
    )
    m = train_two_tower(
        tr["query"].tolist(),
        tr["positive"].tolist(),
        tr["doc_id"].tolist(),
        p,
        validate=lambda enc: evaluate_encoder(enc.encode, vdocs, vq)["mrr@10"],
    )
    res = evaluate_encoder(m.encode, docs, test)
    bm25 = retrieval_metrics(bm25_rank(docs, test["query"].tolist()), test["doc_id"].to_numpy())
    assert np.isfinite(m.history["val_mrr"]).all() and res["mrr@10"] > 0.75, (res, bm25)
