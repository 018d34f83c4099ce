"""The second stage of knowledge-base search (精排): a learned ranker over the fused top candidates.

The first stage (:func:`~assets.retrieval.kb_fusion.fuse_kb`) returns each query's top ``depth``
entries. :class:`KbReranker` rescores them with a LightGBM LambdaRank model over features of each
(query, candidate) pair that both stages already computed, plus the texts themselves:

- the cosine, its gap to the list's best, and its rank in the list;
- BM25 and BM25 × PageRank, each raw and as a share of the list's best, and BM25's rank;
- the PageRank prior, and the candidate's position in the fused list;
- character overlap of the query and the entry's title (share of the query's characters, bigram
  Jaccard) and the log length ratio;
- with a second encoder trained on hard negatives mined from the first stage
  (:mod:`~assets.retrieval.kb_second_encoder`): its cosine, gap and rank (:data:`SECOND_FEATURES`).

The second encoder can also rescore the candidates by its cosine alone (``method="encoder"``,
nothing fitted on the validation queries).

It is trained on the validation queries :func:`~assets.evaluation.faq.holdout` carves from the
training queries, scored by an encoder that never saw them (an encoder's cosine on its own
training queries says nothing about new ones). :func:`choose_kb_rerank` cross-validates it over
those queries against the first stage's ranking and keeps the first stage unless the reranker
beats it by more than one paired standard error. The model is LightGBM's own text format: saving
and loading it unpickles nothing.

A cross-encoder (the packaged MiniLM over query + title) was measured as a third form: one
forward pass over 10 candidates takes ~50 ms on 2 CPU cores, the service's whole budget, and
MiniLM's English vocabulary maps most Chinese characters to ``[UNK]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from assets.retrieval.kb_fusion import KbFusionParams, fuse_kb, reciprocal_ranks

FEATURES = (
    "cos",
    "cos_gap",
    "cos_rank_inv",
    "bm25",
    "bm25_share",
    "bm25_rank_inv",
    "bm25_pr",
    "bm25_pr_share",
    "log_pagerank",
    "fused_rank_inv",
    "fused_score",
    "char_containment",
    "bigram_jaccard",
    "log_length_ratio",
)
SECOND_FEATURES = ("cos2", "cos2_gap", "cos2_rank_inv")


@dataclass(frozen=True)
class KbRerankParams:
    """The reranker and how it is trained.

    Attributes
    ----------
    depth : int
        First-stage candidates rescored per query (the rest keep their order after them).
    n_estimators, learning_rate, num_leaves, min_child_samples : int, float, int, int
        LightGBM's; small trees, since the training queries are the validation split's few.
    folds : int
        Cross-validation folds over the validation queries when choosing.
    seed : int
    method : {"lambdarank", "encoder"}
        A LambdaRank model over the features, or the second encoder's cosine blended with the
        first stage's score: ``(1 - weight) · fused + weight · cos2``, each min-max normalised
        over the query's candidates (nothing is fitted).
    weight : float
        ``method="encoder"``: the second encoder's share.
    second_encoder : bool
        Add the second encoder's :data:`SECOND_FEATURES` (``method="encoder"`` implies it).
    """

    depth: int = 20
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 20
    folds: int = 5
    seed: int = 0
    method: Literal["lambdarank", "encoder"] = "lambdarank"
    second_encoder: bool = False
    weight: float = 1.0

    @classmethod
    def from_dict(cls, d: dict | None) -> KbRerankParams:
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})

    @property
    def uses_second_encoder(self) -> bool:
        return self.second_encoder or self.method == "encoder"

    def label(self) -> str:
        if self.method == "encoder":
            return f"second encoder w={self.weight:g} depth={self.depth}"
        return f"lambdarank{' + second encoder' if self.second_encoder else ''} depth={self.depth}"


def _rank_inv(x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """1 / (rank of each entry in its row, best first); 0 where not ``valid``."""
    order = np.argsort(-x, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, x.shape[1] + 1)[None, :], axis=1)
    inv = 1.0 / ranks
    return inv if valid is None else np.where(valid, inv, 0.0)


def _share(x: np.ndarray) -> np.ndarray:
    top = x.max(1, keepdims=True)
    return np.where(top > 0, x / np.where(top > 0, top, 1.0), 0.0)


def _bigrams(s: str) -> set[str]:
    s = "".join(str(s).lower().split())
    return {s[i : i + 2] for i in range(len(s) - 1)} or {s}


def text_features(queries: list[str], titles: list[list[str]]) -> np.ndarray:
    """``(n_queries, depth, 3)``: character containment, bigram Jaccard, log length ratio of each
    query against each of its candidates' titles."""
    out = np.zeros((len(queries), max((len(t) for t in titles), default=0), 3), np.float32)
    for i, (q, ts) in enumerate(zip(queries, titles)):
        qc, qb, qn = set(str(q).lower()) - {" "}, _bigrams(q), max(len(str(q)), 1)
        for j, t in enumerate(ts):
            tb = _bigrams(t)
            out[i, j] = (
                len(qc & set(str(t).lower())) / max(len(qc), 1),
                len(qb & tb) / max(len(qb | tb), 1),
                np.log(max(len(str(t)), 1) / qn),
            )
    return out


def candidate_features(
    cos: np.ndarray,
    bm25: np.ndarray,
    bm25_pr: np.ndarray,
    pagerank: np.ndarray,
    queries: list[str],
    titles: list[list[str]],
    fused: np.ndarray,
) -> np.ndarray:
    """The reranker's features of each query's candidates, in first-stage order.

    Parameters
    ----------
    cos, bm25, bm25_pr, pagerank : ndarray, shape (n_queries, depth)
        Each candidate's cosine, BM25, BM25 × PageRank and PageRank, best fused candidate first
        (padding: any value; its rows are dropped by the caller).
    queries : list of str
    titles : list of list of str
        Each query's candidates' titles, in the same order.
    fused : ndarray, shape (n_queries, depth)
        The first stage's fused score of each candidate (padding: ``-inf``, stored as 0).

    Returns
    -------
    ndarray, shape (n_queries, depth, len(FEATURES))
    """
    cos, bm25, bm25_pr = (np.asarray(a, np.float64) for a in (cos, bm25, bm25_pr))
    n, depth = cos.shape
    fused_inv = np.broadcast_to(1.0 / np.arange(1, depth + 1), (n, depth))
    cols = [
        cos,
        cos - cos.max(1, keepdims=True),
        _rank_inv(cos),
        bm25,
        _share(bm25),
        _rank_inv(bm25, bm25 > 0),
        bm25_pr,
        _share(bm25_pr),
        np.log(np.maximum(np.asarray(pagerank, np.float64), 1e-9)),
        fused_inv,
        np.where(np.isfinite(fused), np.asarray(fused, np.float64), 0.0),
    ]
    return np.concatenate(
        [np.stack(cols, -1), text_features(queries, titles).astype(np.float64)[:, :depth]], -1
    ).astype(np.float32)


def _minmax_rows(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``x`` scaled to [0, 1] within each row's ``valid`` entries (a constant row: 1)."""
    x = np.asarray(x, np.float64)
    lo = np.where(valid, x, np.inf).min(1, keepdims=True)
    hi = np.where(valid, x, -np.inf).max(1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(valid, np.where(hi > lo, (x - lo) / span, 1.0), 0.0)


def second_features(cos2: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """:data:`SECOND_FEATURES` of each candidate from the second encoder's cosines ``(n, depth)``
    (``valid``: not padding)."""
    c = np.where(valid, np.asarray(cos2, np.float64), -1.0)
    return np.stack([c, c - c.max(1, keepdims=True), _rank_inv(c, valid)], -1).astype(np.float32)


class KbReranker:
    """A second stage: a trained LambdaRank model over :data:`FEATURES` (and
    :data:`SECOND_FEATURES` where it has a ``second`` encoder), or the second encoder's cosine
    alone; with the parameters it was made by."""

    def __init__(self, booster, params: KbRerankParams, second=None):
        if params.uses_second_encoder and second is None:
            raise ValueError(f"{params.label()} needs its second encoder")
        self.booster, self.params, self.second = booster, params, second

    def features(self, base: np.ndarray, queries: list[str], doc_ids: np.ndarray) -> np.ndarray:
        """``base`` (:func:`candidate_features` of the candidates ``doc_ids``, ``-1`` padded),
        with the second encoder's features appended where this reranker uses them."""
        if not self.params.uses_second_encoder:
            return base
        doc_ids = np.asarray(doc_ids)
        cos2 = self.second.cosines(queries, doc_ids)
        return np.concatenate([base, second_features(cos2, doc_ids >= 0)], -1)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, params: KbRerankParams, second=None) -> KbReranker:
        """Train on ``features`` ``(n_queries, depth, n_features)`` (from :meth:`features`) and
        0/1 ``labels`` ``(n_queries, depth)``; queries with no relevant candidate teach nothing
        and are left out. ``method="encoder"`` fits nothing."""
        import lightgbm as lgb

        if params.method == "encoder":
            return cls(None, params, second)
        keep = labels.sum(1) > 0
        x, y = features[keep], labels[keep]
        if not len(x):
            raise ValueError("no validation query has its relevant entry among the candidates")
        data = lgb.Dataset(
            x.reshape(-1, x.shape[-1]),
            y.reshape(-1),
            group=[x.shape[1]] * len(x),
            feature_name=list(FEATURES) + list(SECOND_FEATURES if params.second_encoder else ()),
        )
        booster = lgb.train(
            {
                "objective": "lambdarank",
                "metric": "ndcg",
                "eval_at": [10],
                "learning_rate": params.learning_rate,
                "num_leaves": params.num_leaves,
                "min_data_in_leaf": params.min_child_samples,
                "seed": params.seed,
                "deterministic": True,
                "force_row_wise": True,
                "num_threads": 1,
                "verbosity": -1,
            },
            data,
            num_boost_round=params.n_estimators,
        )
        return cls(booster, params, second)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The model's score of each candidate, ``(n_queries, depth)``."""
        if self.params.method == "encoder":
            valid = features[..., len(FEATURES) + 2] > 0  # the second encoder's rank: 0 for padding
            fused, cos2 = features[..., FEATURES.index("fused_score")], features[..., len(FEATURES)]
            w = self.params.weight
            return (1 - w) * _minmax_rows(fused, valid) + w * _minmax_rows(cos2, valid)
        n, d, f = features.shape
        return self.booster.predict(features.reshape(-1, f), num_threads=1).reshape(n, d)

    def rerank(self, positions: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``positions`` ``(n_queries, depth)`` (``-1`` padded) reordered by the model's scores,
        and those scores (``-inf`` for padding)."""
        s = np.where(positions >= 0, self.scores(features), -np.inf).astype(np.float32)
        order = np.argsort(-s, axis=1, kind="stable")
        return np.take_along_axis(positions, order, 1), np.take_along_axis(s, order, 1)

    def to_dict(self) -> dict:
        """JSON-able: the parameters and LightGBM's text model (the second encoder, where there
        is one, is saved on its own: :class:`~assets.retrieval.kb_second_encoder.SecondEncoder`)."""
        model = self.booster.model_to_string() if self.booster is not None else None
        return {"params": asdict(self.params), "model": model}

    @classmethod
    def from_dict(cls, d: dict, second=None) -> KbReranker:
        import lightgbm as lgb

        booster = lgb.Booster(model_str=d["model"]) if d.get("model") else None
        return cls(booster, KbRerankParams.from_dict(d["params"]), second)


def first_stage(
    lexical: dict[str, np.ndarray],
    cos: np.ndarray,
    fusion: KbFusionParams,
    pagerank: np.ndarray,
    queries: list[str],
    titles: np.ndarray,
    depth: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The fused top ``depth`` positions per query and their :func:`candidate_features`.

    ``lexical`` holds ``"bm25"`` and ``"bm25_pr"`` score matrices ``(n_queries, n_docs)``;
    ``titles`` each column's title."""
    pos, fused = fuse_kb(lexical[fusion.lexical], cos, fusion, depth)
    safe = np.clip(pos, 0, None)
    feats = candidate_features(
        np.take_along_axis(cos, safe, 1),
        np.take_along_axis(lexical["bm25"], safe, 1),
        np.take_along_axis(lexical["bm25_pr"], safe, 1),
        np.asarray(pagerank)[safe],
        queries,
        [list(np.asarray(titles, object)[row]) for row in safe],
        fused,
    )
    return pos, feats


RERANK_GRID = (KbRerankParams(depth=10), KbRerankParams(depth=20))
SECOND_ENCODER_GRID = tuple(
    [KbRerankParams(depth=d, method="encoder", weight=w) for d in (10, 20) for w in (0.3, 0.5, 1.0)]
    + [replace(p, second_encoder=True) for p in RERANK_GRID]
)


def choose_kb_rerank(
    lexical: dict[str, np.ndarray],
    cos: np.ndarray,
    relevant: np.ndarray,
    fusion: KbFusionParams,
    pagerank: np.ndarray,
    queries: list[str],
    titles: np.ndarray,
    grid: tuple[KbRerankParams, ...] = RERANK_GRID,
    second=None,
    doc_ids: np.ndarray | None = None,
) -> tuple[KbReranker | None, list[dict]]:
    """Whether a reranker beats the first stage on the validation queries, and the reranker.

    Each candidate in ``grid`` is cross-validated (``folds`` folds over the queries: trained on the
    others, scored on each; the second encoder's cosine alone fits nothing and is scored on all);
    the best by MRR@10 is kept when it beats the first stage (``fusion``) by more than one paired
    standard error of the per-query reciprocal rank, and is then trained on all the queries.
    Otherwise ``None``: the first stage's ranking stands.

    Parameters
    ----------
    second : SecondEncoder, optional
        A second encoder (never trained on these queries): adds :data:`SECOND_ENCODER_GRID`.
    doc_ids : ndarray, optional
        The doc id of each column (needed with ``second``).

    Returns
    -------
    reranker : KbReranker or None
    curve : list of dict
        The first stage's and every candidate's ``label``, ``params``, ``mrr@10``, ``gain``, ``se``
        and ``chosen``.
    """
    relevant = np.asarray(relevant)
    n = len(relevant)
    if second is not None:
        grid = tuple(grid) + SECOND_ENCODER_GRID
    base_pos, _ = fuse_kb(lexical[fusion.lexical], cos, fusion, 10)
    base = reciprocal_ranks(base_pos, relevant)
    curve = [{"label": "first stage", "params": None, "mrr@10": float(base.mean()), "gain": 0.0, "se": 0.0}]
    built: dict = {}

    def candidates(g: KbRerankParams):
        key = (g.depth, g.uses_second_encoder)
        if key not in built:
            pos, feats = first_stage(lexical, cos, fusion, pagerank, queries, titles, g.depth)
            if g.uses_second_encoder:
                ids = np.where(pos >= 0, np.asarray(doc_ids)[np.clip(pos, 0, None)], -1)
                feats = KbReranker(None, g, second).features(feats, queries, ids)
            built[key] = (pos, feats, (pos == relevant[:, None]).astype(np.float32))
        return built[key]

    for g in grid:
        pos, feats, labels = candidates(g)
        fold = np.random.default_rng(g.seed).permutation(n) % max(2, g.folds)
        rr = np.zeros(n)
        if g.method == "encoder":
            rr = reciprocal_ranks(KbReranker(None, g, second).rerank(pos, feats)[0], relevant)
        for f in np.unique(fold) if g.method != "encoder" else ():
            tr, te = fold != f, fold == f
            try:
                model = KbReranker.fit(feats[tr], labels[tr], g, second)
            except ValueError:
                rr[te] = base[te]
                continue
            rr[te] = reciprocal_ranks(model.rerank(pos[te], feats[te])[0], relevant[te])
        diff = rr - base
        curve.append(
            {
                "label": g.label(),
                "params": asdict(g),
                "mrr@10": float(rr.mean()),
                "gain": float(diff.mean()),
                "se": float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            }
        )
    best = max(range(1, len(curve)), key=lambda i: curve[i]["mrr@10"], default=0)
    pick = best if best and curve[best]["gain"] > max(curve[best]["se"], 0.0) else 0
    for i, row in enumerate(curve):
        row["chosen"] = i == pick
    if not pick:
        return None, curve
    g = grid[pick - 1]
    pos, feats, labels = candidates(g)
    return KbReranker.fit(feats, labels, g, second if g.uses_second_encoder else None), curve
