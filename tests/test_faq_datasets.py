"""FAQ evaluation on the real sets (skipped without ../shared/data): loaders, holdout, BM25, and a
small two-tower that must learn BANKING77 intents. The full comparison is benchmarks/faq_retrieval.py."""

import numpy as np
import pandas as pd
import torch

from assets.embeddings.two_tower import TwoTowerParams, _drop, train_two_tower
from assets.evaluation.faq import bm25_rank, evaluate_encoder, holdout, load_afqmc, load_banking77, retrieval_metrics
from tests.conftest import shared_dataset


def test_holdout_leaks_no_validation_query():
    docs = pd.DataFrame({"doc_id": [0, 1], "title": ["card", "pin"], "questions": [["a", "b", "c"], ["d", "e", "f"]]})
    # Each query is paired with its title and with another question of its entry.
    train = pd.DataFrame({"query": list("abcdef") * 2, "positive": ["card"] * 3 + ["pin"] * 3 + list("bcaefd"),
                          "doc_id": [0, 0, 0, 1, 1, 1] * 2})
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


def test_banking77_and_afqmc_loaders_and_bm25_baseline():
    b = load_banking77(shared_dataset("banking77"))
    assert len(b["docs"]) == 77 and len(b["test"]) == 3080 and b["train"]["doc_id"].between(0, 76).all()
    m = retrieval_metrics(bm25_rank(b["docs"], b["test"]["query"].tolist()), b["test"]["doc_id"].to_numpy())
    assert abs(m["mrr@10"] - 0.8954) < 1e-3  # the baseline the README reports
    a = load_afqmc(shared_dataset("afqmc"))
    assert a["test"]["doc_id"].notna().all() and a["train_docs"]["doc_id"].max() == a["train"]["doc_id"].max()
    m = retrieval_metrics(bm25_rank(a["docs"], a["test"]["query"].tolist()), a["test"]["doc_id"].to_numpy())
    assert abs(m["mrr@10"] - 0.2302) < 1e-3


def test_small_two_tower_learns_banking77_intents():
    b = load_banking77(shared_dataset("banking77"))
    keep = set(range(10))  # 10 intents, 40 training queries each: seconds, not minutes
    docs = b["docs"][b["docs"]["doc_id"].isin(keep)].copy()
    docs["questions"] = docs["questions"].map(lambda qs: qs[:40])
    mine = {q for qs in docs["questions"] for q in qs}
    data = {"train": b["train"][b["train"]["query"].isin(mine)], "train_docs": docs}
    test = b["test"][b["test"]["doc_id"].isin(keep)]
    tr, vdocs, vq = holdout(data)
    p = TwoTowerParams(dim=64, out_dim=64, batch_size=10, max_epochs=6, lr=2e-3, max_len=32, val_fraction=0.0, token_dropout=0.1)
    m = train_two_tower(tr["query"].tolist(), tr["positive"].tolist(), tr["doc_id"].tolist(), p,
                        validate=lambda enc: evaluate_encoder(enc.encode, vdocs, vq)["mrr@10"])
    res = evaluate_encoder(m.encode, docs, test)
    bm25 = retrieval_metrics(bm25_rank(docs, test["query"].tolist()), test["doc_id"].to_numpy())
    assert np.isfinite(m.history["val_mrr"]).all() and res["mrr@10"] > 0.75, (res, bm25)
