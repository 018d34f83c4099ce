"""FAQ / knowledge-base retrieval evaluation: datasets, BM25 baseline, recall@k and MRR@10.

Both datasets become the same shape: ``docs`` (one row per FAQ entry: ``doc_id``, ``title``,
``questions``: similar questions), ``train`` pairs (``query``, ``positive``, ``doc_id``), the
``train_docs`` the training pairs' ``doc_id`` refer to (the same table for BANKING77; the training
split's own questions for AFQMC) and ``test`` queries (``query``, ``doc_id``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from assets.common.topk import batched_topk, take_ids
from assets.embeddings.text import document_vectors, tokenize
from assets.ingest.kb import doc_texts
from assets.retrieval.kb_search import MODES, HybridKbIndex, kb_stage_scores


def load_banking77(folder: str | Path, seed: int = 0, train_fraction: float = 1.0) -> dict:
    """BANKING77: each intent is an FAQ entry (title = intent name, similar questions = its
    training queries); training pairs are (query, another query of the same intent); test queries
    retrieve their intent. ``train_fraction`` < 1 keeps that share of each intent's training
    queries (at least one; seeded, the same every call): a knowledge base on its first day."""
    folder = Path(folder)
    tr = pd.read_csv(folder / "train.csv")
    if train_fraction < 1:
        keep = np.random.default_rng(1_000 + seed).random(len(tr)) < train_fraction
        first = ~tr["category"].duplicated()  # every intent keeps one query
        tr = tr[keep | first.to_numpy()].reset_index(drop=True)
    te = pd.read_csv(folder / "test.csv")
    cats = sorted(tr["category"].unique())
    cid = {c: i for i, c in enumerate(cats)}
    docs = pd.DataFrame(
        {
            "doc_id": range(len(cats)),
            "title": [c.replace("_", " ") for c in cats],
            "questions": [tr.loc[tr["category"] == c, "text"].tolist() for c in cats],
        }
    )
    rng = np.random.default_rng(seed)
    pairs = []
    for c, qs in zip(cats, docs["questions"]):
        for q in qs:
            pairs.append((q, qs[rng.integers(len(qs))] if len(qs) > 1 else c.replace("_", " "), cid[c]))
            pairs.append((q, c.replace("_", " "), cid[c]))
    train = pd.DataFrame(pairs, columns=["query", "positive", "doc_id"])
    test = pd.DataFrame({"query": te["text"], "doc_id": te["category"].map(cid)})
    return {"docs": docs, "train": train, "train_docs": docs, "test": test, "tokenizer": "char"}


def _read_pairs(path: Path) -> pd.DataFrame:
    rows = [
        r
        for r in csv.reader(path.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE)
        if len(r) >= 3
    ]
    return pd.DataFrame(rows, columns=["s1", "s2", "label"]).assign(label=lambda d: d["label"].astype(int))


def load_afqmc(folder: str | Path) -> dict:
    """AFQMC: label-1 pairs are (query, relevant question). Train on the train split's positives;
    the FAQ corpus is every distinct dev ``sentence2``; dev positives are the test queries."""
    folder = Path(folder)
    tr = _read_pairs(folder / "train.txt")
    dev = _read_pairs(folder / "dev.txt")
    pool = sorted(dev["s2"].unique())
    pid = {s: i for i, s in enumerate(pool)}
    docs = pd.DataFrame({"doc_id": range(len(pool)), "title": pool, "questions": [[] for _ in pool]})
    pos = tr[tr["label"] == 1]
    codes, uniq = pd.factorize(pos["s2"])
    train = pd.DataFrame({"query": pos["s1"].tolist(), "positive": pos["s2"].tolist(), "doc_id": codes})
    train_docs = pd.DataFrame(
        {"doc_id": range(len(uniq)), "title": list(uniq), "questions": [[] for _ in uniq]}
    )
    dpos = dev[dev["label"] == 1]
    test = pd.DataFrame({"query": dpos["s1"].tolist(), "doc_id": dpos["s2"].map(pid).tolist()})
    return {"docs": docs, "train": train, "train_docs": train_docs, "test": test, "tokenizer": "char"}


def holdout(
    data: dict, fraction: float = 0.1, seed: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Hold a ``fraction`` of distinct training queries out for validation.

    Returns ``(train_pairs, val_docs, val_queries)``: the pairs of the other queries (without
    those whose positive is a held-out query), the
    ``train_docs`` with the held-out queries removed from their similar questions (no leak), and
    the held-out queries with their ``doc_id`` — a retrieval task shaped like the test.
    """
    train = data["train"]
    uq = train["query"].unique()
    held = set(np.random.default_rng(seed).choice(uq, max(1, int(len(uq) * fraction)), replace=False))
    is_val = train["query"].isin(held)
    docs = data["train_docs"].copy()
    docs["questions"] = [[q for q in qs if q not in held] for qs in docs["questions"]]
    # A held-out query may also be another query's positive: drop those pairs too.
    keep = ~is_val & ~train["positive"].isin(held)
    return (
        train[keep].reset_index(drop=True),
        docs,
        train[is_val].drop_duplicates("query")[["query", "doc_id"]],
    )


def evaluate_encoder(encode, docs: pd.DataFrame, queries: pd.DataFrame) -> dict[str, float]:
    """recall@1/5 and MRR@10 of ``encode`` (texts → unit vectors) retrieving each query's document."""
    ranked = vector_rank(
        document_vectors(encode, docs), encode(queries["query"].tolist()), docs["doc_id"].to_numpy()
    )
    return retrieval_metrics(ranked, queries["doc_id"].to_numpy())


def retrieval_metrics(ranked: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """recall@1, recall@5, MRR@10 for one relevant document per query (``ranked``: doc ids, best first)."""
    hit = ranked[:, :10] == np.asarray(relevant)[:, None]
    rank = np.where(hit.any(1), hit.argmax(1) + 1, 0)
    return {
        "recall@1": float((rank == 1).mean()),
        "recall@5": float(((rank >= 1) & (rank <= 5)).mean()),
        "mrr@10": float(np.where(rank > 0, 1.0 / np.maximum(rank, 1), 0.0).mean()),
    }


def bm25_rank(docs: pd.DataFrame, queries: list[str], tokenizer: str = "char", k: int = 10) -> np.ndarray:
    """BM25 (bm25s, default k1/b) over :func:`doc_texts`, same tokenisation as the encoder."""
    import bm25s

    r = bm25s.BM25()
    r.index([tokenize(t, tokenizer) or ["[UNK]"] for t in doc_texts(docs)], show_progress=False)
    ranked, _ = r.retrieve(
        [tokenize(q, tokenizer) or ["[UNK]"] for q in queries], k=min(k, len(docs)), show_progress=False
    )
    return docs["doc_id"].to_numpy()[np.asarray(ranked)]


def vector_rank(doc_vecs: np.ndarray, query_vecs: np.ndarray, doc_ids: np.ndarray, k: int = 10) -> np.ndarray:
    """Document ids of the ``k`` nearest documents per query (inner product), ``-1`` padded."""
    return take_ids(doc_ids, batched_topk(query_vecs, doc_vecs, k)[0])


def kb_search_metrics(
    docs: pd.DataFrame, test: pd.DataFrame, encode, doc_ids, doc_vecs, tokenizer: str
) -> dict:
    """recall@1/5 and MRR@10 of vector search (``encode`` + document vectors) and of BM25."""
    rel = test["doc_id"].to_numpy()
    queries = test["query"].tolist()
    return {
        "two_tower": retrieval_metrics(vector_rank(doc_vecs, encode(queries), doc_ids), rel),
        "bm25": retrieval_metrics(bm25_rank(docs, queries, tokenizer), rel),
    }


def choose_kb_stages(
    encode,
    val_docs: pd.DataFrame,
    val_queries: pd.DataFrame,
    tokenizer: str,
    first=None,
    pairs: pd.DataFrame | None = None,
    second_params=None,
) -> dict:
    """The hybrid's fusion and second stage, each chosen on the validation queries.

    With the first-stage encoder ``first`` (``encode`` is its ``encode``) and its training
    ``pairs``, a second encoder is trained on hard negatives the chosen first stage mines from
    those pairs (:func:`~assets.retrieval.kb_second_encoder.train_second_encoder`) and competes as a
    second stage too.

    Returns ``{"fusion": KbFusionParams, "fusion_curve": [...], "reranker": KbReranker | None,
    "rerank_curve": [...], "second": SecondEncoder | None}``
    (:func:`~assets.retrieval.kb_fusion.choose_kb_fusion`, then
    :func:`~assets.retrieval.kb_rerank.choose_kb_rerank` over the chosen fusion's candidates)."""
    from assets.retrieval.kb_fusion import choose_kb_fusion
    from assets.retrieval.kb_rerank import choose_kb_rerank
    from assets.retrieval.kb_second_encoder import KbSecondEncoderParams, train_second_encoder

    lexical, cos, relevant, index = kb_stage_scores(encode, val_docs, val_queries, tokenizer)
    fusion, fusion_curve = choose_kb_fusion(lexical, cos, relevant)
    second = None
    if first is not None and pairs is not None and len(pairs):
        second = train_second_encoder(
            first, pairs, val_docs, fusion, second_params or KbSecondEncoderParams()
        )
    reranker, rerank_curve = choose_kb_rerank(
        lexical,
        cos,
        relevant,
        fusion,
        index.pr,
        val_queries["query"].tolist(),
        index.titles,
        second=second,
        doc_ids=index.doc_ids,
    )
    return {
        "fusion": fusion,
        "fusion_curve": fusion_curve,
        "reranker": reranker,
        "rerank_curve": rerank_curve,
        "second": second,
    }


def evaluate_kb_modes(index: HybridKbIndex, test: pd.DataFrame, query_vecs: np.ndarray, fusion=None) -> dict:
    """recall@1/@5 and MRR@10 of BM25, BM25×PageRank, vector and hybrid search on ``test`` queries
    (``hybrid`` fused by ``fusion``, default the index's own, and rescored by the index's
    reranker where it has one; ``hybrid_first_stage``: without the reranker)."""
    rel = test["doc_id"].to_numpy()
    queries = test["query"].tolist()
    out = {
        mode: retrieval_metrics(index.search(queries, query_vecs, k=10, mode=mode, fusion=fusion)[0], rel)
        for mode in MODES
    }
    if index.reranker is not None:
        first = index.search(queries, query_vecs, k=10, mode="hybrid", fusion=fusion, rerank=False)[0]
        out["hybrid_first_stage"] = retrieval_metrics(first, rel)
    return out
