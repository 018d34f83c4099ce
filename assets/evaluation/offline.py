"""Held-out splits, top-k scoring and the popularity baseline for offline evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.common.topk import batched_topk, interaction_mask, topk
from assets.embeddings.factor_model import FactorModel
from assets.evaluation.metrics import ranking_metrics


@dataclass(frozen=True)
class SplitSpec:
    """How to hold out test interactions.

    Attributes
    ----------
    method : {"last_n", "random"}
        ``last_n``: each user's last ``n`` interactions by time; ``random``: a ``test_fraction``
        of every user's interactions, seeded. A family's tuning carves validation by the same rule.
    n : int
        Interactions held out per user (``last_n``).
    test_fraction : float
        Fraction held out per user (``random``).
    min_train : int
        Users with fewer than ``min_train + n`` interactions stay wholly in train (``last_n``).
    seed : int
        Seed of the ``random`` split.
    """

    method: Literal["last_n", "random"] = "last_n"
    n: int = 1
    test_fraction: float = 0.2
    min_train: int = 1
    seed: int = 7


def split_interactions(df: pd.DataFrame, spec: SplitSpec = SplitSpec()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split an interaction frame per user.

    Parameters
    ----------
    df : DataFrame
        ``user_id``, ``item_id``, ``ts`` (and any other columns, kept).
    spec : SplitSpec
        The rule: each user's last ``n`` by time, or a seeded random fraction.

    Returns
    -------
    train, test : DataFrame
        Items a user has in train are removed from their test rows, so the metrics measure
        discovery of new items, not repetition.
    """
    if spec.method not in ("last_n", "random"):
        raise ValueError(f"unknown split method {spec.method!r} (last_n, random)")
    d = df.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    size = d.groupby("user_id")["item_id"].transform("size").to_numpy()
    if spec.method == "last_n":
        pos_from_end = d.groupby("user_id").cumcount(ascending=False).to_numpy()
        is_test = (pos_from_end < spec.n) & (size >= spec.min_train + spec.n)
    else:
        rng = np.random.default_rng(spec.seed)
        is_test = (rng.random(len(d)) < spec.test_fraction) & (size >= spec.min_train + 1)
        # Guarantee at least min_train rows stay in train for each user.
        train_left = d.assign(t=~is_test).groupby("user_id")["t"].transform("sum").to_numpy()
        is_test &= train_left >= spec.min_train
    train, test = d[~is_test], d[is_test]
    seen = pd.MultiIndex.from_frame(train[["user_id", "item_id"]])
    test = test[~pd.MultiIndex.from_frame(test[["user_id", "item_id"]]).isin(seen)]
    test = test.drop_duplicates(["user_id", "item_id"])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def recommend_from_factors(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    batch: int = 2048,
) -> np.ndarray:
    """Top-k item positions for every user by dot product (:func:`batched_topk`), ``-1`` padded."""
    return batched_topk(user_factors, item_factors, k, exclude, batch=batch)[0]


def recommend_popular(
    train: pd.DataFrame, n_users: int, item_index: pd.Index, k: int, exclude: sp.csr_matrix
) -> np.ndarray:
    """The popularity baseline: the most-interacted items not yet seen by each user."""
    counts = train["item_id"].value_counts().reindex(item_index, fill_value=0).to_numpy(dtype=np.float32)
    scores = np.broadcast_to(counts, (n_users, counts.size))
    return topk(scores, k, exclude)[0]


def evaluate_recommendations(
    recommended_idx: np.ndarray, test: pd.DataFrame, user_index: pd.Index, item_index: pd.Index, k: int
) -> dict[str, float]:
    """Ranking metrics of top-k recommendations against held-out interactions.

    Parameters
    ----------
    recommended_idx : ndarray of int, shape (len(user_index), k)
        Item *indices* into ``item_index``, best first, ``-1`` padded.
    test : DataFrame
        Held-out ``user_id``, ``item_id`` (rows outside both indexes are ignored).
    user_index, item_index : pandas.Index
        The ids the rows and the indices refer to.
    k : int

    Returns
    -------
    dict
        ``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``hit_rate@k``, ``coverage@k``, ...
        over the users with a held-out item (``n_eval_users``), Microsoft Recommenders' conventions.
    """
    test = test[test["user_id"].isin(user_index) & test["item_id"].isin(item_index)]
    rows = user_index.get_indexer(test["user_id"])
    cols = item_index.get_indexer(test["item_id"])
    truth = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(user_index), len(item_index)))
    truth.sum_duplicates()
    has_test = np.diff(truth.indptr) > 0
    truth = truth[has_test]
    metrics = ranking_metrics(
        recommended_idx[has_test], truth.indptr, truth.indices, k, n_items=len(item_index)
    )
    metrics["n_eval_users"] = float(has_test.sum())
    return metrics


def evaluate_als_vs_popularity(
    train: pd.DataFrame, test: pd.DataFrame, model: FactorModel, k: int
) -> dict[str, dict[str, float]]:
    """Metrics of a factor model trained on ``train`` and of the popularity baseline."""
    users, items = pd.Index(model.user_ids), pd.Index(model.item_ids)
    seen = interaction_mask(train, users, items)
    rec_model = recommend_from_factors(model.user_factors, model.item_factors, k, exclude=seen)
    rec_pop = recommend_popular(train, len(users), items, k, exclude=seen)
    return {
        "als": evaluate_recommendations(rec_model, test, users, items, k),
        "popularity": evaluate_recommendations(rec_pop, test, users, items, k),
    }


def evaluate_models_same_users(
    train: pd.DataFrame, test: pd.DataFrame, models: dict[str, FactorModel], k: int
) -> dict:
    """Score several factor models and popularity on the users *every* model can serve."""
    common = None
    for m in models.values():
        common = set(m.user_ids) if common is None else common & set(m.user_ids)
    users = pd.Index(np.intersect1d(np.array(sorted(common), dtype=np.int64), test["user_id"].unique()))
    out = {}
    for name, m in models.items():
        items = pd.Index(m.item_ids)
        seen = interaction_mask(train[train["user_id"].isin(users)], users, items)
        rows = pd.Index(m.user_ids).get_indexer(users)
        out[name] = evaluate_recommendations(
            recommend_from_factors(m.user_factors[rows], m.item_factors, k, exclude=seen),
            test,
            users,
            items,
            k,
        )
    items = pd.Index(np.unique(train["item_id"]))
    seen = interaction_mask(train[train["user_id"].isin(users)], users, items)
    out["popularity"] = evaluate_recommendations(
        recommend_popular(train, len(users), items, k, seen), test, users, items, k
    )
    return out
