"""Choosing and measuring the fusion of ALS and item2vec on time splits.

A time split holds out everything after a cut-off, so its test users include people who arrived
after it (cold users): :func:`recommend_users` gives them popularity, and every method compared
here is scored over *all* test users with that same fallback, so the comparison measures the
ranking each method adds, not whether it has a fallback.

:func:`choose_fusion` carves validation out of the training interactions by the same rule, fits
the sources on the rest, and keeps the default fusion unless another one beats it there by more
than one paired standard error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.embeddings.factor_model import FactorModel
from assets.evaluation.metrics import hit_matrix, ndcg_per_user
from assets.retrieval.recommend import FusionParams, Popularity, Recommendations, recommend_users

FitSources = Callable[[pd.DataFrame], dict[str, FactorModel]]


def time_split(df: pd.DataFrame, test_fraction: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions before and after the ``1 - test_fraction`` quantile of ``ts``.

    Test pairs a user already has in train are dropped (the metrics measure discovery), and each
    pair is kept once.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    cut = np.quantile(df["ts"].to_numpy(np.float64), 1 - test_fraction)
    train, test = df[df["ts"] <= cut], df[df["ts"] > cut]
    seen = pd.MultiIndex.from_frame(train[["user_id", "item_id"]])
    test = test[~pd.MultiIndex.from_frame(test[["user_id", "item_id"]]).isin(seen)]
    return train.reset_index(drop=True), test.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)


def score_lists(recs: Recommendations, test: pd.DataFrame, k: int) -> dict[str, np.ndarray]:
    """Per test user (``recs.user_ids`` order): ``ndcg`` and ``recall`` at ``k`` (recall over all
    of the user's test items, Microsoft Recommenders' convention)."""
    items = pd.Index(
        np.unique(np.concatenate([recs.item_ids[recs.item_ids >= 0], test["item_id"].to_numpy()]))
    )
    users = pd.Index(recs.user_ids)
    r = users.get_indexer(test["user_id"].to_numpy(np.int64))
    c = items.get_indexer(test["item_id"].to_numpy(np.int64))
    ok = r >= 0
    truth = sp.csr_matrix((np.ones(int(ok.sum())), (r[ok], c[ok])), shape=(len(users), len(items)))
    truth.sum_duplicates()
    rec_idx = np.where(
        recs.item_ids >= 0, items.get_indexer(recs.item_ids.ravel()).reshape(recs.item_ids.shape), -1
    )
    hits = hit_matrix(rec_idx, truth.indptr, truth.indices)
    n_rel = np.diff(truth.indptr)
    return {
        "ndcg": ndcg_per_user(hits, n_rel, k),
        "recall": hits[:, :k].sum(1) / np.maximum(n_rel, 1),
    }


def _lists(train, test_users, models, params, k) -> Recommendations:
    return recommend_users(
        test_users,
        models,
        params,
        k,
        Popularity.from_frame(train, params.trending_half_life_days),
        seen=train[["user_id", "item_id"]],
    )


def compare_methods(
    train: pd.DataFrame, test: pd.DataFrame, models: dict[str, FactorModel], fused: FusionParams, k: int = 10
) -> dict[str, dict[str, float]]:
    """NDCG@k and recall@k of the fused lists, each source alone and popularity, over every test
    user (cold ones included, each method with the popularity fallback).

    Returns
    -------
    dict
        ``method -> {"ndcg@k", "recall@k", "n_users", "cold_users"}``; methods ``fused``, ``als``,
        ``item2vec``, ``popularity``.
    """
    users = np.unique(test["user_id"].to_numpy(np.int64))
    known = set(train["user_id"].unique().tolist())
    cold = int(sum(u not in known for u in users.tolist()))
    variants = {
        "fused": (models, fused),
        **{s: (models, replace(fused, method=s)) for s in models},
        "popularity": ({}, fused),
    }
    out = {}
    for name, (ms, p) in variants.items():
        s = score_lists(_lists(train, users, ms, p, k), test, k)
        out[name] = {
            f"ndcg@{k}": round(float(s["ndcg"].mean()), 5),
            f"recall@{k}": round(float(s["recall"].mean()), 5),
            "n_users": len(users),
            "cold_users": cold,
        }
    return out


def fusion_grid(default: FusionParams = FusionParams()) -> list[FusionParams]:
    """The candidates :func:`choose_fusion` tries, the default first: each list alone; RRF and
    the weighted sum with ALS's weight at 0.25, 0.5 and 0.75, each with the popularity list fused
    at weight 0, 0.25 and 0.5; and those with popularity weighted by recency (half-life 30 days)."""
    grid = [default]
    for m in ("rrf", "weighted"):
        for w in (0.25, 0.5, 0.75):
            for pw in (0.0, 0.25, 0.5):
                for hl in (0.0, 30.0) if pw else (default.trending_half_life_days,):
                    p = replace(
                        default, method=m, als_weight=w, popularity_weight=pw, trending_half_life_days=hl
                    )
                    if p not in grid:
                        grid.append(p)
    grid += [replace(default, method=s, als_weight=0.5, popularity_weight=0.0) for s in ("als", "item2vec")]
    grid += [
        replace(default, method="popularity", popularity_weight=0.0, trending_half_life_days=hl)
        for hl in (0.0, 30.0)
    ]
    return grid


def choose_fusion(
    train: pd.DataFrame,
    fit_sources: FitSources,
    k: int = 10,
    validation_fraction: float = 0.1,
    default: FusionParams = FusionParams(),
    grid: list[FusionParams] | None = None,
) -> tuple[FusionParams, list[dict]]:
    """The fusion to serve, decided on validation carved from ``train`` by a time split.

    Parameters
    ----------
    train : DataFrame
        ``user_id, item_id, ts`` (and ``confidence``): the training interactions only.
    fit_sources : callable
        ``interactions -> {"als": FactorModel, "item2vec": FactorModel}``: fits the sources with
        the parameters that will be served.
    k, validation_fraction : int, float
    default : FusionParams
        Kept unless a candidate's validation NDCG@k beats it by more than one paired standard
        error over the validation users.
    grid : list of FusionParams, optional
        The candidates (default :func:`fusion_grid`); the default is scored first either way.

    Returns
    -------
    chosen : FusionParams
    trials : list of dict
        Every candidate's parameters, validation NDCG@k and recall@k, and gain over the default.
    """
    fit, val = time_split(train, validation_fraction)
    models = fit_sources(fit)
    users = np.unique(val["user_id"].to_numpy(np.int64))
    base = None
    trials, per_user = [], []
    for p in [default, *(q for q in (grid or fusion_grid(default)) if q != default)]:
        s = score_lists(_lists(fit, users, models, p, k), val, k)
        if base is None:
            base = s["ndcg"]
        diff = s["ndcg"] - base
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        trials.append(
            {
                **asdict(p),
                f"ndcg@{k}": round(float(s["ndcg"].mean()), 5),
                f"recall@{k}": round(float(s["recall"].mean()), 5),
                "gain_over_default": round(float(diff.mean()), 5),
                "gain_se": round(se, 5),
            }
        )
        per_user.append(p)
    best = max(range(len(trials)), key=lambda i: trials[i][f"ndcg@{k}"])
    confirmed = trials[best]["gain_over_default"] > trials[best]["gain_se"] > 0
    chosen = per_user[best] if confirmed else default
    for t, p in zip(trials, per_user):
        t["chosen"] = p == chosen
    return chosen, trials
