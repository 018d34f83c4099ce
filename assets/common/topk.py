"""One batched top-k for every recommend and search path.

``topk`` works on a dense score block (rows = queries or users, columns = candidates) and returns
column positions and scores, best first, padded with ``-1`` / ``-inf`` where a row has fewer than
``k`` allowed candidates. Exclusions are a sparse ``(n_rows, n_cols)`` mask, so "seen items" for
10k users costs one scatter, not a Python loop. Callers map positions to their ids with
:func:`take_ids`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def topk(
    scores: np.ndarray, k: int, exclude: sp.spmatrix | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of every row.

    Parameters
    ----------
    scores : ndarray, shape (n_rows, n_cols)
        Higher is better. Not modified (a float32 copy is masked).
    k : int
        Results per row; more than ``n_cols`` pads.
    exclude : sparse matrix or bool ndarray, shape (n_rows, n_cols), optional
        Non-zero / True entries are never returned (seen items, blocklists, the query itself).

    Returns
    -------
    ids : ndarray of int64, shape (n_rows, k)
        Column positions, best first; ``-1`` where fewer than ``k`` allowed scores above ``-inf`` exist.
    top_scores : ndarray of float32, shape (n_rows, k)
        Their scores; ``-inf`` in padded slots. Ties keep the lower column first.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    s = np.array(scores, dtype=np.float32, copy=True, ndmin=2)
    n, m = s.shape
    if exclude is not None:
        if exclude.shape != s.shape:
            raise ValueError(f"exclude has shape {exclude.shape}, scores {s.shape}")
        if sp.issparse(exclude):
            c = exclude.tocoo()
            s[c.row[c.data != 0], c.col[c.data != 0]] = -np.inf
        else:
            s[np.asarray(exclude, dtype=bool)] = -np.inf
    s[np.isnan(s)] = -np.inf
    ids = np.full((n, k), -1, dtype=np.int64)
    out = np.full((n, k), -np.inf, dtype=np.float32)
    kk = min(k, m)
    if kk == 0 or n == 0:
        return ids, out
    if kk < m:
        part = np.argpartition(s, m - kk, axis=1)[:, m - kk :]  # no negated copy of the block
    else:
        part = np.broadcast_to(np.arange(m), (n, m))
    ps = np.take_along_axis(s, part, axis=1)
    if kk < m:
        # argpartition picks arbitrarily among scores tied with the k-th best; redo just those rows
        # so ties always resolve to the lowest columns (rows cut at -inf are padding either way).
        kth = ps.min(axis=1)
        amb = np.flatnonzero((kth > -np.inf) & ((s >= kth[:, None]).sum(axis=1) > kk))
        if amb.size:
            sr, kr = s[amb], kth[amb][:, None]
            gt, eq = sr > kr, sr == kr
            take = gt | (eq & (np.cumsum(eq, axis=1) <= (kk - gt.sum(axis=1))[:, None]))
            part[amb] = np.nonzero(take)[1].reshape(len(amb), kk)
            ps[amb] = np.take_along_axis(sr, part[amb], axis=1)
    # Sort by score descending, then column ascending (deterministic ties).
    order = np.lexsort((part, -ps), axis=1)
    top = np.take_along_axis(part, order, axis=1).astype(np.int64)
    ts = np.take_along_axis(ps, order, axis=1)
    ok = ts > -np.inf  # -inf: excluded, NaN or padding; +inf is a valid (best) score
    ids[:, :kk] = np.where(ok, top, -1)
    out[:, :kk] = np.where(ok, ts, -np.inf)
    return ids, out


def take_ids(ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Map positions from :func:`topk` to external ids, keeping ``-1`` padding."""
    ids = np.asarray(ids, dtype=np.int64)
    return (
        np.where(positions >= 0, ids[np.clip(positions, 0, None)], -1)
        if len(ids)
        else np.full_like(positions, -1)
    )


def interaction_mask(
    pairs: pd.DataFrame,
    row_ids: np.ndarray | pd.Index,
    col_ids: np.ndarray | pd.Index,
    row_col: str = "user_id",
    col_col: str = "item_id",
) -> sp.csr_matrix:
    """CSR ``(len(row_ids), len(col_ids))`` with a 1 for every ``(row, col)`` pair present in ``pairs``.

    Pairs whose ids are not in ``row_ids`` / ``col_ids`` are ignored. Used as the ``exclude`` of
    :func:`topk` (items a user has already seen) and as evaluation truth.
    """
    r = pd.Index(row_ids).get_indexer(pairs[row_col])
    c = pd.Index(col_ids).get_indexer(pairs[col_col])
    ok = (r >= 0) & (c >= 0)
    m = sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (r[ok], c[ok])), shape=(len(row_ids), len(col_ids))
    )
    m.sum_duplicates()
    m.data[:] = 1  # a pair seen twice is still one pair (as truth, a duplicate must not count twice)
    return m


def batched_topk(
    queries: np.ndarray, candidates: np.ndarray, k: int, exclude: sp.spmatrix | None = None, batch: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk` of ``queries @ candidates.T`` in row batches.

    Parameters
    ----------
    queries : ndarray, shape (n, d)
    candidates : ndarray, shape (m, d)
    k : int
    exclude : sparse matrix, shape (n, m), optional
        Non-zero entries are never returned (e.g. seen items).
    batch : int
        Rows per batch: memory stays ``batch × m``.

    Returns
    -------
    ids : ndarray of int64, shape (n, k)
        Candidate row indices, best first, ``-1`` padded; ties go to the lower index.
    scores : ndarray of float32, shape (n, k)
        ``-inf`` padded.
    """
    n = len(queries)
    ids = np.full((n, k), -1, dtype=np.int64)
    sc = np.full((n, k), -np.inf, dtype=np.float32)
    ex = exclude.tocsr() if exclude is not None and sp.issparse(exclude) else exclude
    for a in range(0, n, batch):
        b = min(a + batch, n)
        ids[a:b], sc[a:b] = topk(queries[a:b] @ candidates.T, k, None if ex is None else ex[a:b])
    return ids, sc
