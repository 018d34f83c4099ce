"""How knowledge-base search combines its lexical and vector stages, chosen on validation.

:func:`fuse_kb` ranks each query's candidates, the union of the top ``depth`` of a lexical stage
(BM25, or BM25 × the PageRank prior: ``lexical``) and of vector recall, by one of:

- ``vector``: cosine alone (the vector ranking; the union changes nothing);
- ``weighted``: ``(1 - w) · cos + w · lex``, both min-max normalised over the query's candidates;
- ``rrf``: ``(1 - w) / (rrf_k + rank_vector) + w / (rrf_k + rank_lexical)``, ranks among the
  query's candidates (a document the lexical stage did not match adds nothing there).

:func:`choose_kb_fusion` scores a grid of these on validation queries and keeps ``vector`` unless a
candidate beats it by more than one paired standard error of the per-query reciprocal rank, so a
set where the lexical stage does not help keeps the vector ranking by itself. The test split is
never seen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from assets.common.topk import topk

KbFusionMethod = Literal["vector", "weighted", "rrf"]
LexicalStage = Literal["bm25", "bm25_pr"]


@dataclass(frozen=True)
class KbFusionParams:
    """How the lexical and vector candidate lists become one ranking.

    Attributes
    ----------
    method : {"vector", "weighted", "rrf"}
    lexical : {"bm25", "bm25_pr"}
        The lexical stage: BM25, or BM25 × the PageRank prior (which helps only where the
        similar-question graph is good: validation decides).
    lexical_weight : float
        ``w`` above: the lexical stage's share.
    depth : int
        Candidates taken from each stage per query.
    rrf_k : float
        Reciprocal rank fusion's rank offset.
    """

    method: KbFusionMethod = "vector"
    lexical: LexicalStage = "bm25"
    lexical_weight: float = 0.0
    depth: int = 50
    rrf_k: float = 60.0

    @classmethod
    def from_dict(cls, d: dict | None) -> KbFusionParams:
        """From :func:`dataclasses.asdict`'s form (``None``: the default, vector alone)."""
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})

    def label(self) -> str:
        if self.method == "vector":
            return "vector"
        return f"{self.method} {self.lexical} w={self.lexical_weight:g} depth={self.depth}"


def _ranks(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """1-based rank of every column per row among the valid ones (invalid: +inf)."""
    order = np.argsort(np.where(valid, -scores, np.inf), axis=1, kind="stable")
    ranks = np.empty_like(order, dtype=np.float64)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1, dtype=np.float64)[None, :], axis=1)
    return np.where(valid, ranks, np.inf)


def _minmax(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    lo = np.where(mask, x, np.inf).min(1, keepdims=True)
    hi = np.where(mask, x, -np.inf).max(1, keepdims=True)
    span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)
    return np.where(mask, (x - np.where(np.isfinite(lo), lo, 0.0)) / span, 0.0)


def candidate_mask(lex: np.ndarray, cos: np.ndarray, depth: int) -> np.ndarray:
    """Per query, the union of the top ``depth`` documents of the lexical stage (those it matched)
    and of vector recall, as a boolean ``(n_queries, n_docs)`` mask."""
    depth = min(depth, cos.shape[1])
    cand = np.zeros(cos.shape, bool)
    for block in (topk(lex, depth, exclude=lex <= 0)[0], topk(cos, depth)[0]):
        r, c = np.nonzero(block >= 0)
        cand[r, block[r, c]] = True
    return cand


def score_candidates(
    lex: np.ndarray, cos: np.ndarray, cand: np.ndarray, params: KbFusionParams
) -> np.ndarray:
    """The fused score of each candidate (``cand``); normalisations and ranks are taken over each
    query's candidates only, so a store that returns just the candidates' scores (Milvus) ranks
    them exactly as in process."""
    lex, cos = np.asarray(lex, np.float32), np.asarray(cos, np.float32)
    w = params.lexical_weight
    if params.method == "vector":
        score = cos
    elif params.method == "weighted":
        score = (1 - w) * _minmax(cos, cand) + w * _minmax(lex, cand & (lex > 0))
    elif params.method == "rrf":
        score = (1 - w) / (params.rrf_k + _ranks(cos, cand)) + w / (
            params.rrf_k + _ranks(lex, cand & (lex > 0))
        )
    else:
        raise ValueError(f"unknown KB fusion {params.method!r} (vector, weighted, rrf)")
    return np.asarray(score, np.float32)


def fuse_kb(
    lex: np.ndarray, cos: np.ndarray, params: KbFusionParams, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` document positions per query under ``params``.

    Parameters
    ----------
    lex : ndarray, shape (n_queries, n_docs)
        Scores of the lexical stage ``params.lexical`` (``<= 0``: the document did not match).
    cos : ndarray, shape (n_queries, n_docs)
        Cosine of each query to each document.
    params : KbFusionParams
    k : int

    Returns
    -------
    positions, scores : ndarray, shape (n_queries, k)
        Column positions into the documents, best first (``-1`` / ``-inf`` padded).
    """
    lex, cos = np.asarray(lex, np.float32), np.asarray(cos, np.float32)
    if params.method == "vector":
        return topk(cos, k)
    cand = candidate_mask(lex, cos, params.depth)
    return topk(score_candidates(lex, cos, cand, params), k, exclude=~cand)


def reciprocal_ranks(positions: np.ndarray, relevant: np.ndarray, cutoff: int = 10) -> np.ndarray:
    """Per query, 1 / rank of its relevant position within the first ``cutoff`` (else 0)."""
    hit = positions[:, :cutoff] == np.asarray(relevant)[:, None]
    return np.where(hit.any(1), 1.0 / (hit.argmax(1) + 1), 0.0)


def kb_fusion_grid(depths=(20, 50, 100), lexical=("bm25", "bm25_pr")) -> list[KbFusionParams]:
    """The candidates :func:`choose_kb_fusion` scores: vector alone, then weighted sums and RRF at
    several lexical shares and candidate depths, over each lexical stage."""
    out = [KbFusionParams()]
    for lx in lexical:
        for d in depths:
            out += [KbFusionParams("weighted", lx, w, d) for w in (0.1, 0.2, 0.3, 0.5, 0.7)]
            out += [KbFusionParams("rrf", lx, w, d) for w in (0.3, 0.5)]
    return out


def choose_kb_fusion(
    lexical: dict[str, np.ndarray],
    cos: np.ndarray,
    relevant: np.ndarray,
    grid: list[KbFusionParams] | None = None,
) -> tuple[KbFusionParams, list[dict]]:
    """The fusion validation confirms, and the validation curve.

    Parameters
    ----------
    lexical : dict
        ``{"bm25": scores, "bm25_pr": scores}``, each ``(n_queries, n_docs)``: the validation
        queries' scores from each lexical stage (a grid entry whose stage is absent is skipped).
    cos : ndarray, shape (n_queries, n_docs)
        Their cosine scores.
    relevant : ndarray of int
        Each validation query's relevant document position.
    grid : list of KbFusionParams, optional
        Candidates (default :func:`kb_fusion_grid`); the first is the default kept unless beaten.

    Returns
    -------
    chosen : KbFusionParams
        The best candidate by validation MRR@10 when it beats the default by more than one paired
        standard error of the per-query reciprocal rank; the default otherwise.
    curve : list of dict
        Every candidate's ``params``, ``label``, ``mrr@10``, ``gain`` over the default, its
        ``se`` and ``chosen``.
    """
    grid = [g for g in (grid or kb_fusion_grid()) if g.method == "vector" or g.lexical in lexical]
    any_lex = next(iter(lexical.values()))
    rr = [reciprocal_ranks(fuse_kb(lexical.get(g.lexical, any_lex), cos, g)[0], relevant) for g in grid]
    base = rr[0]
    n = max(1, len(base))
    rows = []
    for g, r in zip(grid, rr):
        diff = r - base
        se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        rows.append(
            {
                "params": asdict(g),
                "label": g.label(),
                "mrr@10": float(r.mean()),
                "gain": float(diff.mean()),
                "se": se,
            }
        )
    best = max(range(len(grid)), key=lambda i: rows[i]["mrr@10"])
    pick = best if rows[best]["gain"] > rows[best]["se"] and rows[best]["gain"] > 0 else 0
    for i, row in enumerate(rows):
        row["chosen"] = i == pick
    return grid[pick], rows
