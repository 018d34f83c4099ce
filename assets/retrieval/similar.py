"""Similar entities: by entity id or by free text, with structured filters.

Queries are vectors in the entity space (an indexed entity's own vector, or text encoded by the
registered ``recstack-entity-vectors`` model). Structured filters (``location``, ``type``, ``tags``)
are applied to over-fetched candidates, widening the fetch until ``k`` pass or the index is
exhausted, so a narrow filter still returns its best matches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from assets.indexes.neighbours import Neighbours


def _allowed(profiles: pd.DataFrame, filters: dict | None) -> np.ndarray | None:
    """Entity ids passing every filter (``{"location": "北京", "type": ["国企", "民营"], "tags":
    "上市"}``)."""
    if not filters:
        return None
    keep = np.ones(len(profiles), bool)
    for col, want in filters.items():
        if col not in profiles.columns:
            raise ValueError(
                f"unknown filter field {col!r} (known: {[c for c in profiles.columns if c != 'entity_id']})"
            )
        values = {want} if isinstance(want, str) else set(want)
        vals = profiles[col]
        if vals.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            keep &= vals.map(lambda v, want=values: bool(want & set(v))).to_numpy()
        else:
            keep &= vals.astype(str).isin(values).to_numpy()
    return profiles["entity_id"].to_numpy(np.int64)[keep]


def similar(
    index: Neighbours,
    queries: np.ndarray,
    k: int = 10,
    exclude: np.ndarray | None = None,
    profiles: pd.DataFrame | None = None,
    filters: dict | None = None,
    oversample: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k similar entities per query vector, with structured filters.

    Parameters
    ----------
    index : Neighbours
        The entity vectors (a Faiss index, or a Milvus alias that filters natively).
    queries : ndarray
        Query vectors (an entity's own vector, or encoded free text), one row each.
    k : int
    exclude : ndarray, optional
        One id per query left out of its row (the query entity itself), or -1.
    profiles : DataFrame, optional
        ``entity_id`` and the filterable fields (``location``, ``type``, ``tags``).
    filters : dict, optional
        Field -> value or list of values (list fields match any). A store that filters natively
        (Milvus) gets them as its search filter; otherwise candidates are over-fetched and the
        fetch widens until ``k`` pass or the index is exhausted.
    oversample : int
        The first fetch's multiple of ``k`` when filtering.

    Returns
    -------
    ids : ndarray of int64, shape (n_queries, k)
        Padded with ``-1``.
    scores : ndarray of float32, shape (n_queries, k)
        Padded with ``-inf``.
    """
    q = np.atleast_2d(np.asarray(queries, np.float32))
    out_i = np.full((len(q), k), -1, np.int64)
    out_s = np.full((len(q), k), -np.inf, np.float32)
    ex = np.full(len(q), -1, np.int64) if exclude is None else np.asarray(exclude, np.int64)
    if index.native_filters:
        ids, scores = index.search(q, k + 1, filters=filters or None)
        for row, (ri, rs) in enumerate(zip(ids, scores)):
            ok = (ri >= 0) & (ri != ex[row])
            got = ri[ok][:k]
            out_i[row, : len(got)], out_s[row, : len(got)] = got, rs[ok][:k]
        return out_i, out_s
    allowed = _allowed(profiles, filters) if profiles is not None else None
    size = index.size
    fetch = min(size, (k + 1) * (oversample if allowed is not None else 1))
    pending = np.arange(len(q))
    while pending.size:
        ids, scores = index.search(q[pending], fetch)
        done = []
        for row, (ri, rs) in zip(pending, zip(ids, scores)):
            ok = (ri >= 0) & (ri != ex[row])
            if allowed is not None:
                ok &= np.isin(ri, allowed)
            got = ri[ok][:k]
            if len(got) == k or fetch >= size:
                out_i[row, : len(got)], out_s[row, : len(got)] = got, rs[ok][:k]
                done.append(row)
        pending = np.setdiff1d(pending, done)
        fetch = min(size, fetch * 4)
    return out_i, out_s


def similar_to_entities(
    index: Neighbours, entity_ids: np.ndarray, k: int = 10, **kw
) -> tuple[np.ndarray, np.ndarray]:
    """Entities similar to indexed ones (each query entity itself excluded). Unknown ids raise
    ``KeyError``."""
    entity_ids = np.asarray(entity_ids, np.int64)
    unknown = entity_ids[~index.contains(entity_ids)]
    if unknown.size:
        raise KeyError(f"unknown entity id(s): {unknown[:10].tolist()}")
    return similar(index, index.reconstruct(entity_ids), k, exclude=entity_ids, **kw)
