"""Tokenisation, InfoNCE and the two-tower encoder on tiny data; FAQ metrics and BM25."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from assets.embeddings.text import Vocab, document_vectors, tokenize
from assets.embeddings.two_tower import TwoTower, TwoTowerParams, _batches, info_nce, train_two_tower
from assets.evaluation.faq import bm25_rank, retrieval_metrics


def test_tokenize_chinese_and_english():
    assert tokenize("花呗怎么还款 Card-2 isn't here") == [
        "花",
        "呗",
        "怎",
        "么",
        "还",
        "款",
        "card",
        "2",
        "isn't",
        "here",
    ]
    assert tokenize("花呗怎么还款", "jieba")[-2:] == ["怎么", "还款"]  # words, not characters
    assert tokenize("") == [] and tokenize(None) == []
    with pytest.raises(ValueError):
        tokenize("x", "bpe")
    v = Vocab.build(["a b b", "c"], min_freq=1)
    assert v.encode("b zz") == [2, 1] and v.encode("") == [1] and v.encode("!!!") == [1]  # never empty


def test_info_nce_matches_hand_computation():
    q = torch.tensor([[1.0, 0], [0, 1], [0.6, 0.8]])
    d = torch.tensor([[1.0, 0], [0, 1], [0.8, 0.6]])
    s = [[1, 0, 0.8], [0, 1, 0.6], [0.6, 0.8, 0.96]]
    expected = sum(-(s[i][i] - math.log(sum(math.exp(x) for x in s[i]))) for i in range(3)) / 3
    assert float(info_nce(q, d, 1.0)) == pytest.approx(expected, abs=1e-6)
    assert float(info_nce(q, d, 0.1)) < float(info_nce(q, d, 1.0))  # sharper temperature, same ranking


def test_batches_keep_groups_apart():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(5), 8)
    batches = _batches(np.arange(40), groups, 4, rng)
    assert all(len(set(groups[b])) == len(b) for b in batches)
    assert sum(len(b) for b in batches) >= 36


def test_tiny_training_gives_unit_vectors_and_roundtrips(tmp_path):
    topics = {
        "card": ["my card has not arrived", "where is my new card", "card delivery is late"],
        "refund": ["i want a refund", "how do i get my money back", "refund my purchase"],
        "pin": ["i forgot my pin", "reset my pin code", "change the pin"],
    }
    q, p, g = [], [], []
    for i, (t, qs) in enumerate(topics.items()):
        for a in qs:
            q.append(a), p.append(t), g.append(i)
    params = TwoTowerParams(dim=32, out_dim=16, heads=2, max_epochs=3, batch_size=3, val_fraction=0.0)
    m = train_two_tower(q * 4, p * 4, g * 4, params)
    v = m.encode(["my card is late", "", "完全未知的词"])
    assert (
        v.shape == (3, 16) and np.isfinite(v).all() and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    )
    m.save(tmp_path / "tt")
    back = TwoTower.load(tmp_path / "tt")
    np.testing.assert_allclose(back.encode(["my card is late"]), v[:1], atol=1e-5)
    with pytest.raises(TypeError):
        m.encode("a single string")
    with pytest.raises(ValueError):
        train_two_tower([], [], params=params)


def test_faq_metrics_bm25_and_doc_vectors():
    docs = pd.DataFrame(
        {"doc_id": [0, 1], "title": ["card arrival", "refund"], "questions": [["where is my card"], []]}
    )
    ranked = bm25_rank(docs, ["card card", "refund please"])
    assert ranked[:, 0].tolist() == [0, 1]
    m = retrieval_metrics(np.array([[0, 1], [0, 1]]), np.array([0, 1]))
    assert m == {"recall@1": 0.5, "recall@5": 1.0, "mrr@10": 0.75}

    def enc(texts):
        return np.array([[1.0, 0.0] if "card" in t else [0.0, 1.0] for t in texts], np.float32)

    dv = document_vectors(enc, docs)
    np.testing.assert_allclose(dv, [[1, 0], [0, 1]])


def test_group_pools_hold_each_distinct_positive_once():
    from assets.embeddings.two_tower import _group_pools

    pos = ["title a", "q2", "title a", "q1", "title b", "title b"]
    pools = _group_pools(np.arange(6), np.array([0, 0, 0, 0, 1, 1]), pos)
    assert sorted(pos[i] for i in pools[0]) == ["q1", "q2", "title a"] and [pos[i] for i in pools[1]] == [
        "title b"
    ]
