"""Ranking metrics over top-k recommendation lists.

Conventions follow Microsoft Recommenders' ``python_evaluation`` (and trec_eval for nDCG), and
are pinned by tests against their published expected values:

- relevance is binary: every held-out (user, item) pair is relevant;
- ``precision@k = hits / k`` (not hits / number of candidates);
- ``recall@k = hits / n_relevant``;
- ``MAP@k`` divides the sum of precision-at-hit by ``min(k, n_relevant)``; ``MAP`` by ``n_relevant``;
- ``nDCG@k`` uses gain 1 and discount ``1 / log(1 + rank)``; the ideal DCG covers
  ``min(k, n_relevant)`` positions (the log base cancels for binary gains);
- ``hit_rate@k`` is the share of users with at least one hit;
- users are averaged with equal weight; a user with no hits contributes 0.

The batch API takes ``recommended`` as an ``(n_users, k)`` int64 array (``-1`` pads short lists)
and the relevant items as a CSR-like pair ``(indptr, indices)`` aligned with its rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def hit_matrix(recommended: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Boolean ``(n_users, k)`` matrix: is ``recommended[u, r]`` relevant to user ``u``.

    Vectorised by offsetting each user's item ids into a disjoint range, so one ``np.isin`` call
    checks every row against its own relevant set.
    """
    recommended = np.asarray(recommended, dtype=np.int64)
    n, k = recommended.shape
    if n == 0:
        return np.zeros((0, k), dtype=bool)
    counts = np.diff(indptr)
    span = int(max(recommended.max(initial=0), indices.max(initial=0))) + 2
    offsets = np.arange(n, dtype=np.int64) * span
    rel_keys = indices.astype(np.int64) + np.repeat(offsets, counts)
    rec_keys = recommended + offsets[:, None]
    hits = np.isin(rec_keys, rel_keys)
    return hits & (recommended >= 0)


def precision_at_k(hits: np.ndarray, k: int) -> float:
    """Mean over users of ``hits in top k / k``."""
    return float(hits[:, :k].sum(axis=1).mean() / k) if len(hits) else 0.0


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """Mean over users of ``hits in top k / n_relevant``."""
    if not len(hits):
        return 0.0
    return float(np.mean(hits[:, :k].sum(axis=1) / np.maximum(n_relevant, 1)))


def hit_rate_at_k(hits: np.ndarray, k: int) -> float:
    """Share of users with at least one relevant item in the top k."""
    return float(hits[:, :k].any(axis=1).mean()) if len(hits) else 0.0


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int, *, full: bool = False) -> float:
    """Mean average precision in the top k.

    ``full=False`` (MAP@k) divides by ``min(k, n_relevant)``; ``full=True`` (recommenders' ``map``)
    divides by ``n_relevant``.
    """
    if not len(hits):
        return 0.0
    h = hits[:, :k].astype(np.float64)
    ranks = np.arange(1, h.shape[1] + 1, dtype=np.float64)
    prec_at_hit = np.cumsum(h, axis=1) / ranks * h
    denom = n_relevant if full else np.minimum(n_relevant, k)
    return float(np.mean(prec_at_hit.sum(axis=1) / np.maximum(denom, 1)))


def ndcg_per_user(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Each user's binary-gain nDCG@k (discount ``1/log(1+rank)``, ideal over ``min(k, n_relevant)``)."""
    if not len(hits):
        return np.zeros(0)
    h = hits[:, :k].astype(np.float64)
    disc = 1.0 / np.log2(np.arange(2, h.shape[1] + 2, dtype=np.float64))
    dcg = (h * disc).sum(axis=1)
    ideal_n = np.minimum(n_relevant, k).astype(np.int64)
    cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64)))])
    idcg = cum[ideal_n]
    # A user without relevant items has dcg = idcg = 0 and scores 0 (divided by 1, not by 0).
    return dcg / np.where(idcg > 0, idcg, 1.0)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """Mean over users of :func:`ndcg_per_user`."""
    return float(np.mean(ndcg_per_user(hits, n_relevant, k))) if len(hits) else 0.0


def r_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """Hits at ranks ``<= n_relevant`` within the top k, divided by ``n_relevant``."""
    if not len(hits):
        return 0.0
    h = hits[:, :k]
    ranks = np.arange(1, h.shape[1] + 1)
    within = h & (ranks[None, :] <= n_relevant[:, None])
    return float(np.mean(within.sum(axis=1) / np.maximum(n_relevant, 1)))


def dcg_graded(gains_in_rank_order: np.ndarray, k: int, discount: str = "log2") -> float:
    """DCG of one ranked list with graded gains (``raw`` gains, ``log2`` or ``ln`` discount)."""
    g = np.asarray(gains_in_rank_order, dtype=np.float64)[:k]
    ranks = np.arange(2, g.size + 2, dtype=np.float64)
    d = np.log2(ranks) if discount == "log2" else np.log(ranks)
    return float((g / d).sum())


def ndcg_graded(
    gains_in_rank_order: np.ndarray, all_true_gains: np.ndarray, k: int, discount: str = "log2"
) -> float:
    """Graded nDCG@k for one list; the ideal ranking sorts *all* true gains."""
    ideal = np.sort(np.asarray(all_true_gains, dtype=np.float64))[::-1]
    idcg = dcg_graded(ideal, k, discount)
    return dcg_graded(gains_in_rank_order, k, discount) / idcg if idcg > 0 else 0.0


def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one recommendation list."""
    rec = np.asarray(recommended)
    return float(np.unique(rec[rec >= 0]).size / n_items) if n_items else 0.0


def ranking_metrics(
    recommended: np.ndarray, indptr: np.ndarray, indices: np.ndarray, k: int, n_items: int | None = None
) -> dict[str, float]:
    """All the standard top-k metrics at once (Microsoft Recommenders' conventions).

    Parameters
    ----------
    recommended : ndarray of int, shape (n_users, >= k)
        Item indices, best first, ``-1`` padded.
    indptr, indices : ndarray
        Each user's relevant items in CSR form (row ``u`` is ``indices[indptr[u]:indptr[u+1]]``).
    k : int
    n_items : int, optional
        Catalogue size, for ``coverage@k``.

    Returns
    -------
    dict
        ``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``hit_rate@k`` (and ``coverage@k``).
    """
    hits = hit_matrix(recommended, indptr, indices)
    n_rel = np.diff(indptr)
    out = {
        f"precision@{k}": precision_at_k(hits, k),
        f"recall@{k}": recall_at_k(hits, n_rel, k),
        f"ndcg@{k}": ndcg_at_k(hits, n_rel, k),
        f"map@{k}": map_at_k(hits, n_rel, k),
        f"hit_rate@{k}": hit_rate_at_k(hits, k),
    }
    if n_items is not None:
        out[f"coverage@{k}"] = catalog_coverage(recommended[:, :k], n_items)
    return out


def frames_to_arrays(
    truth: pd.DataFrame, pred: pd.DataFrame, k: int, user="user_id", item="item_id", score="prediction"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn long-format truth/prediction frames into ``(recommended, indptr, indices)``.

    Only users present in both frames are kept (the recommenders convention); predictions are
    ranked by ``score`` descending and cut at ``k``.
    """
    users = np.intersect1d(truth[user].unique(), pred[user].unique())
    t = truth[truth[user].isin(users)].sort_values(user)
    p = pred[pred[user].isin(users)].sort_values([user, score], ascending=[True, False], kind="stable")
    p = p.assign(_r=p.groupby(user).cumcount())
    p = p[p["_r"] < k]
    rec = np.full((users.size, k), -1, dtype=np.int64)
    row = np.searchsorted(users, p[user].to_numpy())
    rec[row, p["_r"].to_numpy()] = p[item].to_numpy()
    counts = t.groupby(user).size().reindex(users, fill_value=0).to_numpy()
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return rec, indptr, t[item].to_numpy(dtype=np.int64)
