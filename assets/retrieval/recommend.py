"""Per-user recommendations: ALS and item2vec fused, business filters, a popularity fallback.

One function, :func:`recommend_users`, serves the daily ``user_recommendations`` asset and the
online ``POST /v1/recommend``, so the two cannot disagree on a filter or a fallback. Everything is
batched: each source scores a block of users at once (``FactorModel.recommend``), fusion is a
sort over the block's candidate pairs, and no step loops over users in Python.

Fusion (:class:`FusionParams`) is reciprocal rank fusion or a weighted sum of min-max normalised
scores; which one, with which weight, is decided on validation data carved from the training
interactions (:func:`assets.evaluation.fusion.choose_fusion`), never on the test split.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.embeddings.factor_model import FactorModel
from assets.ingest.catalog import ItemFilter
from assets.retrieval.audiences import ItemAudiences

SOURCES = ("als", "item2vec")  # the models
POPULARITY = "popularity"
LISTS = (*SOURCES, POPULARITY)  # what fusion can combine (bit i of a source mask = LISTS[i])


@dataclass(frozen=True)
class FusionParams:
    """How the ALS and item2vec lists become one.

    Attributes
    ----------
    method : {"rrf", "weighted", "als", "item2vec", "popularity"}
        ``rrf``: each source adds ``weight / (rrf_k + rank)``; ``weighted``: each adds ``weight``
        times its min-max normalised score; ``als`` / ``item2vec`` / ``popularity``: that list
        alone.
    als_weight : float
        ALS's weight; item2vec's is ``1 - als_weight``.
    popularity_weight : float
        The weight of the (trending) popularity list as a third fused source (0: popularity only
        fills lists the models leave short). Ignored by the single-source methods.
    depth : int
        Candidates taken from each source per user before fusing.
    rrf_k : float
        Reciprocal rank fusion's rank offset (60 in Cormack, Clarke and Büttcher, 2009).
    trending_half_life_days : float
        Half-life of the recency weight of the popularity fallback, in days; 0 counts every
        interaction alike (plain popularity).
    """

    method: Literal["rrf", "weighted", "als", "item2vec", "popularity"] = "rrf"
    als_weight: float = 0.5
    popularity_weight: float = 0.0
    depth: int = 100
    rrf_k: float = 60.0
    trending_half_life_days: float = 0.0

    def weights(self) -> dict[str, float]:
        """Each list's weight under this method (a single source gets 1, the others 0)."""
        if self.method in LISTS:
            return {s: float(s == self.method) for s in LISTS}
        return {"als": self.als_weight, "item2vec": 1.0 - self.als_weight, POPULARITY: self.popularity_weight}


class UserHistories(ItemAudiences):
    """Each user's items as the same memory-mapped CSR as :class:`ItemAudiences`, keyed by user:
    the seen-items filter of a serving worker without the interactions table."""

    @classmethod
    def from_frame(cls, interactions: pd.DataFrame) -> UserHistories:
        swapped = interactions.rename(columns={"user_id": "item_id", "item_id": "user_id"})
        a = ItemAudiences.from_frame(swapped[["user_id", "item_id"]])
        return cls(a.item_ids, a.indptr, a.user_ids, a.confidence)

    def pairs(self, users: np.ndarray) -> pd.DataFrame:
        """``user_id, item_id`` of every interaction of ``users``."""
        items, us, _ = self.rows(users)
        return pd.DataFrame({"user_id": us, "item_id": items})


@dataclass(frozen=True)
class Popularity:
    """Items ranked by (recency-weighted) interaction counts: the fallback list.

    Attributes
    ----------
    item_ids : ndarray of int64
        Best first.
    scores : ndarray of float32
        The weighted counts, descending.
    """

    item_ids: np.ndarray
    scores: np.ndarray

    @classmethod
    def from_frame(cls, interactions: pd.DataFrame, half_life_days: float = 0.0) -> Popularity:
        """Counts per item; with ``half_life_days`` > 0 each interaction weighs
        ``0.5 ** (age / half_life)``, age measured from the newest interaction."""
        w = np.ones(len(interactions))
        if half_life_days > 0 and "ts" in interactions and len(interactions):
            ts = interactions["ts"].to_numpy(np.float64)
            w = 0.5 ** ((ts.max() - ts) / (half_life_days * 86400.0))
        s = pd.Series(w).groupby(interactions["item_id"].to_numpy(np.int64)).sum()
        s = s.sort_values(ascending=False, kind="stable")
        return cls(s.index.to_numpy(np.int64), s.to_numpy(np.float32))

    def save(self, path) -> None:
        from pathlib import Path

        Path(path).mkdir(parents=True, exist_ok=True)
        np.savez(Path(path) / "popularity.npz", item_ids=self.item_ids, scores=self.scores)

    @classmethod
    def load(cls, path) -> Popularity:
        from pathlib import Path

        with np.load(Path(path) / "popularity.npz", allow_pickle=False) as z:
            return cls(z["item_ids"], z["scores"])


@dataclass(frozen=True)
class Recommendations:
    """A block of users' lists.

    Attributes
    ----------
    user_ids : ndarray of int64, shape (n,)
    item_ids : ndarray of int64, shape (n, k)
        Best first, ``-1`` where fewer than ``k`` items remain after the filters.
    scores : ndarray of float32, shape (n, k)
        The fused score; popularity fills get negative scores below every fused one.
    sources : ndarray of str, shape (n, k)
        What put the item there: ``als``, ``item2vec``, ``als+item2vec`` or ``popularity``.
    reasons : ndarray of str, shape (n,)
        Why the user got this list: ``fused``, ``als only``, ``item2vec only`` or ``popularity:
        unknown to both models``.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray
    sources: np.ndarray
    reasons: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per (user, slot) filled: ``user_id, rank, item_id, score, source, reason``."""
        n, k = self.item_ids.shape
        ok = self.item_ids >= 0
        rows, ranks = np.nonzero(ok)
        return pd.DataFrame(
            {
                "user_id": self.user_ids[rows],
                "rank": (ranks + 1).astype(np.int32),
                "item_id": self.item_ids[ok],
                "score": self.scores[ok],
                "source": self.sources[ok],
                "reason": self.reasons[rows],
            }
        )


def fuse(
    lists: dict[str, tuple[np.ndarray, np.ndarray]], params: FusionParams, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fuse each source's ``(item ids, scores)`` (rows = the same users) into one top-``k``.

    Returns
    -------
    item_ids, scores, source_mask : ndarray, shape (n, k)
        ``source_mask`` has bit ``i`` set where ``LISTS[i]`` listed the item.
    """
    w = params.weights()
    n = next(iter(lists.values()))[0].shape[0]
    rows_l, items_l, contrib_l, bits_l = [], [], [], []
    for name, (ids, scores) in lists.items():
        if w.get(name, 0.0) <= 0:
            continue
        ok = ids >= 0
        if params.method == "weighted":
            lo = np.where(ok, scores, np.inf).min(1, keepdims=True)
            hi = np.where(ok, scores, -np.inf).max(1, keepdims=True)
            flat = ~(hi > lo)  # one candidate, or all equal: each counts fully
            c = np.where(flat, 1.0, (scores - np.where(flat, 0, lo)) / np.where(flat, 1, hi - lo))
        else:  # rrf (a single source ranks by its own order either way)
            c = np.broadcast_to(1.0 / (params.rrf_k + 1.0 + np.arange(ids.shape[1])), ids.shape)
        r, j = np.nonzero(ok)
        rows_l.append(r)
        items_l.append(ids[r, j])
        contrib_l.append(w[name] * c[r, j])
        bits_l.append(np.full(len(r), 1 << LISTS.index(name), np.int8))
    out_ids = np.full((n, k), -1, np.int64)
    out_scores = np.full((n, k), -np.inf, np.float32)
    out_bits = np.zeros((n, k), np.int8)
    if not rows_l or not sum(len(r) for r in rows_l):
        return out_ids, out_scores, out_bits
    rows, items = np.concatenate(rows_l), np.concatenate(items_l)
    contrib, bits = np.concatenate(contrib_l), np.concatenate(bits_l)
    codes, item_of = pd.factorize(items)
    key = rows.astype(np.int64) * len(item_of) + codes
    uniq, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, weights=contrib)
    mask = np.zeros(len(uniq), np.int8)
    np.bitwise_or.at(mask, inv, bits)
    urow, uitem = uniq // len(item_of), item_of[uniq % len(item_of)]
    # Per row, best first; ties by item id so the order is deterministic.
    order = np.lexsort((uitem, -total, urow))
    urow, uitem, total, mask = urow[order], uitem[order], total[order], mask[order]
    first = np.searchsorted(urow, np.arange(n))
    rank = np.arange(len(urow)) - first[urow]
    keep = rank < k
    out_ids[urow[keep], rank[keep]] = uitem[keep]
    out_scores[urow[keep], rank[keep]] = total[keep]
    out_bits[urow[keep], rank[keep]] = mask[keep]
    return out_ids, out_scores, out_bits


def _fill_popular(ids, scores, bits, popular: Popularity, excluded: sp.csr_matrix | None, item_pos):
    """Fill each row's empty slots (a suffix: fused lists are best first) with the most popular
    items neither in the row nor excluded; the loops run over the ``k`` slots, not over users."""
    n, k = ids.shape
    filled = (ids >= 0).sum(1)
    if (filled == k).all() or not len(popular.item_ids):
        return ids, scores, bits
    # Enough popular items for the most-filtered row: its exclusions, its own k, and k to give.
    most_excluded = 0 if excluded is None else int(excluded.getnnz(1).max(initial=0))
    depth = int(min(len(popular.item_ids), 2 * k + most_excluded))
    cand = popular.item_ids[:depth]
    cand_pos = pd.Index(cand)
    taken = np.zeros((n, depth), bool)
    for j in range(k):
        p = cand_pos.get_indexer(ids[:, j])
        r = np.flatnonzero(p >= 0)
        taken[r, p[r]] = True
    if excluded is not None:
        taken |= excluded[:, item_pos.get_indexer(cand)].toarray() > 0
    free = ~taken
    nth_free = np.cumsum(free, axis=1) - 1
    r, c = np.nonzero(free)
    slot = filled[r] + nth_free[r, c]
    ok = slot < k
    r, c, slot = r[ok], c[ok], slot[ok]
    ids, scores, bits = ids.copy(), scores.copy(), bits.copy()
    ids[r, slot] = cand[c]
    scores[r, slot] = -1.0 - c.astype(np.float32) / depth  # below every fused score, in popular order
    bits[r, slot] = -1
    return ids, scores, bits


def recommend_users(
    user_ids: np.ndarray,
    models: dict[str, FactorModel],
    params: FusionParams,
    k: int,
    popular: Popularity,
    seen: UserHistories | pd.DataFrame | None = None,
    blocked: np.ndarray | None = None,
    item_filter: ItemFilter | None = None,
) -> Recommendations:
    """Top-``k`` items for each user: the fused lists of the models that know the user, with the
    seen and blocked items removed, filled from popularity (for users neither model knows, the whole
    list).

    Parameters
    ----------
    user_ids : array of int64
    models : dict
        ``"als"`` and/or ``"item2vec"`` -> :class:`FactorModel` (the champions).
    params : FusionParams
    k : int
    popular : Popularity
        The fallback ranking.
    seen : UserHistories or DataFrame, optional
        The users' past interactions (``user_id, item_id``): never recommended again.
    blocked : array of int64, optional
        Items recommended to nobody (out of stock, withdrawn).
    item_filter : ItemFilter, optional
        Catalogue attributes to keep only or to exclude (``{"genres": ["Comedy"]}``); the items it
        removes are blocked like the blocklist, in the models' lists and the popularity fill alike.

    Returns
    -------
    Recommendations
    """
    user_ids = np.asarray(user_ids, np.int64)
    n = len(user_ids)
    seen_pairs = seen.pairs(user_ids) if isinstance(seen, UserHistories) else seen
    item_pos = _item_space([m.item_ids for m in models.values()] + [popular.item_ids])
    if item_filter is not None and item_filter.active:
        by_attribute = item_filter.blocked(item_pos.to_numpy(np.int64))
        blocked = by_attribute if blocked is None else np.union1d(np.asarray(blocked, np.int64), by_attribute)
    excl = _exclusion(user_ids, seen_pairs, blocked, item_pos)
    lists, known = {}, {}
    for name in SOURCES:
        m = models.get(name)
        if m is None:
            continue
        known[name] = m.user_rows(user_ids) >= 0
        if params.weights()[name] <= 0:
            continue
        cols = item_pos.get_indexer(m.item_ids)
        mine = None if excl is None else excl[:, cols]
        lists[name] = m.recommend(user_ids, min(params.depth, len(m.item_ids)), exclude=mine)
    if lists and params.weights()[POPULARITY] > 0:
        empty = np.full((n, params.depth), -1, np.int64)
        pids, _, _ = _fill_popular(
            empty, empty.astype(np.float32), empty.astype(np.int8), popular, excl, item_pos
        )
        lookup = pd.Series(popular.scores, index=popular.item_ids)  # scores by id, for weighted
        pscores = np.where(pids >= 0, lookup.reindex(pids.ravel()).to_numpy().reshape(pids.shape), -np.inf)
        lists[POPULARITY] = (pids, pscores.astype(np.float32))
    if lists:
        ids, scores, bits = fuse(lists, params, k)
    else:
        ids, scores = np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
        bits = np.zeros((n, k), np.int8)
    ids, scores, bits = _fill_popular(ids, scores, bits, popular, excl, item_pos)
    labels = np.array(
        ["+".join(x for i, x in enumerate(LISTS) if m >> i & 1) for m in range(8)], dtype=object
    )
    sources = np.where(bits < 0, POPULARITY, labels[np.clip(bits, 0, 7)]).astype(object)
    k_als = known.get("als", np.zeros(n, bool)) & (params.weights()["als"] > 0)
    k_i2v = known.get("item2vec", np.zeros(n, bool)) & (params.weights()["item2vec"] > 0)
    reasons = np.select(
        [k_als & k_i2v, k_als, k_i2v],
        ["fused", "als only", "item2vec only"],
        "popularity: the chosen list" if params.method == POPULARITY else "popularity: unknown to the models",
    ).astype(object)
    return Recommendations(user_ids, ids, scores.astype(np.float32), sources, reasons)


_SPACES: dict[tuple[int, ...], tuple[list, pd.Index]] = {}
_SPACES_LOCK = threading.Lock()


def _item_space(arrays: list[np.ndarray]) -> pd.Index:
    """The sorted union of the models' and the popularity list's items, as an index; cached per
    set of arrays (a served state's arrays never change), so a request does not rebuild it.

    The service's threads share it. pandas builds an index's hash table lazily and not
    thread-safely (pandas-dev/pandas#21150): under load, concurrent first lookups saw this
    unique index as non-unique and the request failed. So the table is built before the index is
    cached, when no other thread can see it yet."""
    key = tuple(id(a) for a in arrays)
    with _SPACES_LOCK:
        hit = _SPACES.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], arrays)):
        return hit[1]
    space = pd.Index(np.unique(np.concatenate(arrays)))
    space.get_indexer(space[:1])  # builds the hash table and the uniqueness flag, in this thread
    with _SPACES_LOCK:
        if len(_SPACES) >= 8:
            _SPACES.pop(next(iter(_SPACES)))
        _SPACES[key] = (list(arrays), space)
    return space


def _exclusion(user_ids, seen_pairs, blocked, item_pos: pd.Index) -> sp.csr_matrix | None:
    """The ``(users, items)`` mask of what must not be recommended, over ``item_pos``'s columns."""
    n, m = len(user_ids), len(item_pos)
    parts = []
    if seen_pairs is not None and len(seen_pairs):
        r = pd.Index(user_ids).get_indexer(seen_pairs["user_id"].to_numpy(np.int64))
        c = item_pos.get_indexer(seen_pairs["item_id"].to_numpy(np.int64))
        ok = (r >= 0) & (c >= 0)
        parts.append((r[ok], c[ok]))
    if blocked is not None and len(blocked):
        c = item_pos.get_indexer(np.asarray(blocked, np.int64))
        c = c[c >= 0]
        parts.append((np.repeat(np.arange(n), len(c)), np.tile(c, n)))
    if not parts:
        return None
    r = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    mat = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n, m))
    mat.sum_duplicates()
    mat.data[:] = 1
    return mat
