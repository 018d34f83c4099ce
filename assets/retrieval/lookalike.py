"""Lookalike audience expansion: U2U, I2U2U and I2I2U.

- **U2U**: nearest users (in user-vector space) of each seed user, scores aggregated per candidate.
- **I2U2U**: seed items → the users who interacted with them (the item's existing audience) →
  U2U expansion of that audience.
- **I2I2U**: seed items → nearest items (in item-vector space) → users who interacted with those
  items, weighted by item similarity.

Every strategy drops the seeds and the already-converted users (the explicit ``exclude`` set, and
for item seeds, the users who already interacted with a seed item) and returns
``(user_ids, scores)`` sorted by score, best first.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from assets.indexes.neighbours import Neighbours
from assets.retrieval.audiences import ItemAudiences, audience_rows

Interactions = pd.DataFrame | ItemAudiences  # a frame (evaluation) or the served CSR


def _aggregate(cand: np.ndarray, score: np.ndarray, how: str) -> pd.Series:
    s = pd.Series(score, index=cand)
    s = s[s.index >= 0]
    g = s.groupby(level=0)
    if how == "sum":
        return g.sum()
    if how == "max":
        return g.max()
    if how == "mean":
        return g.mean()
    raise ValueError(f"unknown aggregation {how!r} (sum, max, mean)")


def _finish(agg: pd.Series, exclude: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    agg = agg[~agg.index.isin(exclude)]
    # Sort by score, then id, so ties are deterministic.
    df = (
        agg.rename("score")
        .rename_axis("id")
        .reset_index()
        .sort_values(["score", "id"], ascending=[False, True])
    )
    df = df.head(size)
    return df["id"].to_numpy(np.int64), df["score"].to_numpy(np.float32)


def u2u(
    seed_users: np.ndarray,
    user_index: Neighbours,
    size: int = 1000,
    k_per_seed: int = 100,
    exclude: np.ndarray | None = None,
    how: Literal["sum", "max", "mean"] = "sum",
) -> tuple[np.ndarray, np.ndarray]:
    """Expand seed users to similar users.

    Parameters
    ----------
    seed_users : ndarray of int64
        Seed user ids; ids not in the index are ignored.
    user_index : Neighbours
        Index over user vectors.
    size : int
        Audience size to return.
    k_per_seed : int
        Neighbours fetched per seed before aggregation.
    exclude : ndarray of int64, optional
        Already-converted users to drop (seeds are always dropped).
    how : {"sum", "max", "mean"}
        How a candidate's similarities to several seeds combine; ``sum`` favours users close to
        many seeds.
    """
    seeds = np.unique(np.asarray(seed_users, dtype=np.int64))
    held, q = user_index.lookup(seeds)
    seeds = seeds[held]
    if seeds.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids, scores = user_index.search(q, k_per_seed + 1)
    agg = _aggregate(ids.ravel(), scores.ravel(), how)
    drop = np.union1d(seeds, exclude if exclude is not None else np.zeros(0, np.int64))
    return _finish(agg, drop, size)


def item_audience(items: np.ndarray, interactions: Interactions) -> np.ndarray:
    """Users who interacted with any of ``items``."""
    return np.unique(audience_rows(interactions, items)[0])


def i2u2u(
    seed_items: np.ndarray,
    interactions: Interactions,
    user_index: Neighbours,
    size: int = 1000,
    k_per_seed: int = 50,
    max_seed_users: int = 2000,
    exclude: np.ndarray | None = None,
    how: Literal["sum", "max", "mean"] = "sum",
) -> tuple[np.ndarray, np.ndarray]:
    """I2U2U: seed items → their users (capped, most engaged first) → U2U.

    Parameters
    ----------
    seed_items : ndarray of int64
    interactions : DataFrame or ItemAudiences
        ``user_id``, ``item_id``, ``confidence``: the items' audiences.
    user_index : Neighbours
        The user vectors' index.
    size : int
        Audience size.
    k_per_seed : int
        Neighbours fetched per seed user.
    max_seed_users : int
        Cap on the seed users (the most engaged with the seed items first).
    exclude : ndarray of int64, optional
        Users never returned (besides the items' own audience, always excluded).
    how : {"sum", "max", "mean"}
        How a candidate's similarities to the seeds combine.

    Returns
    -------
    user_ids : ndarray of int64
    scores : ndarray of float32
        Best first, at most ``size``.
    """
    users, _, conf = audience_rows(interactions, seed_items)
    audience = np.unique(users)
    seeds = audience
    if audience.size > max_seed_users:
        eng = pd.Series(conf, index=users).groupby(level=0).sum().sort_values(ascending=False, kind="stable")
        seeds = eng.index.to_numpy(np.int64)[:max_seed_users]
    drop = np.union1d(audience, exclude if exclude is not None else np.zeros(0, np.int64))
    return u2u(seeds, user_index, size=size, k_per_seed=k_per_seed, exclude=drop, how=how)


def i2i2u(
    seed_items: np.ndarray,
    interactions: Interactions,
    item_index: Neighbours,
    size: int = 1000,
    k_items: int = 20,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """I2I2U: seed items → similar items (similarity-weighted) → the users of those items.

    Parameters
    ----------
    seed_items : ndarray of int64
    interactions : DataFrame or ItemAudiences
        ``user_id``, ``item_id``: the expanded items' users.
    item_index : Neighbours
        The item vectors' index.
    size : int
        Audience size.
    k_items : int
        Similar items fetched per seed.
    exclude : ndarray of int64, optional
        Users never returned (besides the seeds' own audience, always excluded: already converted).

    Returns
    -------
    user_ids : ndarray of int64
    scores : ndarray of float32
        Best first; a user's score is the sum, over the expanded items they interacted with, of
        the item's best similarity to a seed.
    """
    seeds = np.unique(np.asarray(seed_items, dtype=np.int64))
    held, q = item_index.lookup(seeds)
    seeds = seeds[held]
    if seeds.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids, scores = item_index.search(q, k_items + 1)
    item_w = _aggregate(ids.ravel(), scores.ravel(), "max")
    item_w = item_w[~item_w.index.isin(seeds)]
    users, items, _ = audience_rows(interactions, item_w.index.to_numpy(np.int64))
    # Each (user, item) pair once, then the items' weights summed per user: sorts and a bincount
    # (a frame's drop_duplicates and groupby were most of a request's time on popular items).
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    first = np.ones(len(users), bool)
    first[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    users, items = users[first], items[first]
    uniq, inv = np.unique(users, return_inverse=True)
    w = item_w.reindex(items).to_numpy(np.float64)
    user_score = pd.Series(np.bincount(inv, weights=w, minlength=len(uniq)), index=uniq)
    drop = np.union1d(
        item_audience(seeds, interactions), exclude if exclude is not None else np.zeros(0, np.int64)
    )
    return _finish(user_score, drop, size)
