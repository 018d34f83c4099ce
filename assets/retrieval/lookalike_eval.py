"""Campaigns and the time-split evaluation that picks a lookalike strategy.

The practice chooses among U2U, I2U2U and I2I2U "by experiment or validation on history". Here
that validation is a function: split interactions at time ``T``; for each target item, the seeds
are its audience before ``T`` and the truth is the users who first interact with it after ``T``.
Each strategy (on vectors trained before ``T`` only) and a baseline (the most active users) build
an audience of size ``N`` for the same targets; recall and precision against the truth decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from assets.indexes.faiss_index import VectorIndex
from assets.indexes.neighbours import Neighbours
from assets.retrieval.lookalike import Interactions, i2i2u, i2u2u, item_audience, u2u

Strategy = Literal["u2u", "i2u2u", "i2i2u"]
STRATEGIES: tuple[str, ...] = ("u2u", "i2u2u", "i2i2u")


@dataclass(frozen=True)
class Campaign:
    """A lookalike request: seeds (users or target items), the audience size, who to leave out.

    ``allowed_users`` is a business-rule filter (e.g. users in the campaign's region or opted in):
    when given, only those users can be in the audience.
    """

    seed_user_ids: tuple[int, ...] = ()
    seed_item_ids: tuple[int, ...] = ()
    size: int = 1000
    exclude_user_ids: tuple[int, ...] = ()
    allowed_users: tuple[int, ...] | None = None
    k_per_seed: int = 50
    strategies: tuple[str, ...] = field(default=STRATEGIES)


def run_campaign(
    c: Campaign,
    interactions: Interactions,
    user_index: Neighbours,
    item_index: Neighbours,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Build a campaign's audience with each of its strategies.

    Parameters
    ----------
    c : Campaign
        Seeds, size, strategies, exclusions and the business-rule filter (``allowed_users``).
    interactions : DataFrame or ItemAudiences
        ``user_id``, ``item_id``, ``confidence``: items' audiences (I2U2U, I2I2U) and converted users.
    user_index, item_index : Neighbours
        The ALS user and item vectors (a Faiss index or a Milvus alias).

    Returns
    -------
    dict
        Strategy -> ``(user_ids, scores)``, best first, with exclusions and the filter applied. U2U
        needs seed users, I2U2U and I2I2U seed items; a strategy without its seeds is left out.
    """
    exclude = np.asarray(c.exclude_user_ids, np.int64)
    # Over-fetch when a filter will drop candidates, so the audience still reaches `size`.
    fetch = c.size if c.allowed_users is None else c.size * 4
    out = {}
    users, items = np.asarray(c.seed_user_ids, np.int64), np.asarray(c.seed_item_ids, np.int64)
    if "u2u" in c.strategies and users.size:
        out["u2u"] = u2u(users, user_index, size=fetch, k_per_seed=c.k_per_seed, exclude=exclude)
    if "i2u2u" in c.strategies and items.size:
        out["i2u2u"] = i2u2u(
            items, interactions, user_index, size=fetch, k_per_seed=c.k_per_seed, exclude=exclude
        )
    if "i2i2u" in c.strategies and items.size:
        out["i2i2u"] = i2i2u(items, interactions, item_index, size=fetch, exclude=exclude)
    if c.allowed_users is not None:
        allowed = np.asarray(c.allowed_users, np.int64)
        out = {
            s: (ids[np.isin(ids, allowed)][: c.size], sc[np.isin(ids, allowed)][: c.size])
            for s, (ids, sc) in out.items()
        }
    return {s: (ids[: c.size], sc[: c.size]) for s, (ids, sc) in out.items()}


def time_split_targets(
    interactions: pd.DataFrame,
    cut_quantile: float = 0.8,
    n_targets: int = 10,
    min_seeds: int = 5,
    min_new: int = 5,
) -> tuple[int, pd.DataFrame, dict[int, np.ndarray]]:
    """``(T, interactions before T, {item: users who first interact with it after T})`` for the
    ``n_targets`` items with the most new users (at least ``min_new``) and at least ``min_seeds``
    users before ``T``."""
    t = int(np.quantile(interactions["ts"], cut_quantile))
    before = interactions[interactions["ts"] < t]
    after = interactions[interactions["ts"] >= t]
    seen = pd.MultiIndex.from_frame(before[["item_id", "user_id"]].drop_duplicates())
    new = after[["item_id", "user_id"]].drop_duplicates()
    new = new[~pd.MultiIndex.from_frame(new).isin(seen)]
    n_new = new.groupby("item_id").size()
    n_seed = before.groupby("item_id")["user_id"].nunique()
    ok = n_new[(n_new >= min_new) & (n_seed.reindex(n_new.index).fillna(0) >= min_seeds)]
    targets = ok.sort_values(ascending=False, kind="stable").index[:n_targets]
    truth = {int(i): np.sort(new.loc[new["item_id"] == i, "user_id"].to_numpy(np.int64)) for i in targets}
    return t, before.reset_index(drop=True), truth


def most_active(interactions: pd.DataFrame, size: int, exclude: np.ndarray) -> np.ndarray:
    """The baseline audience: the users with the most interactions, excluding ``exclude``."""
    counts = interactions.groupby("user_id").size().sort_values(ascending=False, kind="stable")
    return counts.index[~counts.index.isin(exclude)].to_numpy(np.int64)[:size]


def audience_metrics(audience: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    hits = np.intersect1d(audience, truth).size
    return {"recall": hits / max(1, truth.size), "precision": hits / max(1, audience.size)}


def evaluate_strategies(
    before: pd.DataFrame,
    truth: dict[int, np.ndarray],
    user_index: VectorIndex,
    item_index: VectorIndex,
    size: int = 200,
    k_per_seed: int = 50,
) -> dict:
    """Mean recall@N and precision@N over the target items for every strategy and the baseline;
    the winner (by recall) and its margin over the runner-up and over the baseline."""
    per: dict[str, list[dict]] = {s: [] for s in (*STRATEGIES, "most_active")}
    for item, users_after in truth.items():
        seeds = item_audience(np.array([item]), before)
        camp = Campaign(
            seed_user_ids=tuple(seeds.tolist()), seed_item_ids=(item,), size=size, k_per_seed=k_per_seed
        )
        auds = run_campaign(camp, before, user_index, item_index)
        for s in STRATEGIES:
            per[s].append(audience_metrics(auds[s][0] if s in auds else np.zeros(0, np.int64), users_after))
        per["most_active"].append(audience_metrics(most_active(before, size, seeds), users_after))
    table = {
        s: {m: float(np.mean([r[m] for r in rows])) if rows else 0.0 for m in ("recall", "precision")}
        for s, rows in per.items()
    }
    ranked = sorted(STRATEGIES, key=lambda s: table[s]["recall"], reverse=True)
    best, second = ranked[0], ranked[1]
    base = table["most_active"]["recall"]
    return {
        "metrics": table,
        "winner": best,
        "margin_over_runner_up": table[best]["recall"] - table[second]["recall"],
        "lift_over_baseline": table[best]["recall"] / base if base else float("inf"),
        "targets": len(truth),
        "size": size,
    }
