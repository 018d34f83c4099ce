"""Hyperparameter search (Optuna TPE, seeded) for ALS, item2vec and the two-tower encoder.

Every search scores its trials on a validation split carved from the *training* data, so the
test split that evaluation reports on is never seen. The defaults are always the first trial, so
``default_value`` is scored exactly as the trials are and the best is never worse than it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.evaluation.offline import SplitSpec, split_interactions

log = logging.getLogger(__name__)

OnTrial = Callable[[int, dict, float, float], None]


def optuna_search(suggest: Callable, evaluate: Callable[[dict], float], defaults: dict, n_trials: int,
                  timeout_s: float | None = None, seed: int = 0, on_trial: OnTrial | None = None, label: str = "") -> dict:
    """Maximise ``evaluate(params)`` over ``suggest(trial) -> params`` with seeded TPE.

    Parameters
    ----------
    suggest : callable
        ``suggest(optuna.Trial) -> dict``: the full parameters of one trial (searched and fixed ones).
    evaluate : callable
        ``evaluate(params) -> float``, higher is better, scored on validation data only.
    defaults : dict
        The searched parameters' default values; enqueued as trial 0.
    n_trials, timeout_s : int, float
        Budget: whichever ends first (a running trial is never cut short).
    on_trial : callable, optional
        ``on_trial(number, params, value, seconds)`` after each trial (e.g. an MLflow child run).

    Returns
    -------
    dict
        ``best_params`` (full parameters), ``best_value``, ``default_value`` (trial 0), ``trials``
        (``[number, value, searched params]``) and ``seconds``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()

    def objective(trial):
        params = suggest(trial)
        trial.set_user_attr("params", params)
        ts = time.perf_counter()
        value = float(evaluate(params))
        secs = time.perf_counter() - ts
        log.info("%s trial %d: %.4f in %.1f s %s", label, trial.number, value, secs, trial.params)
        if on_trial:
            on_trial(trial.number, params, value, secs)
        return value

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(defaults)
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s)
    done = [t for t in study.trials if t.value is not None]
    log.info("%s tuning: best %.4f vs default %.4f after %d trials", label, study.best_value, done[0].value, len(done))
    return {"best_params": study.best_trial.user_attrs["params"], "best_value": float(study.best_value),
            "default_value": float(done[0].value), "trials": [[t.number, float(t.value), t.params] for t in done],
            "seconds": round(time.perf_counter() - t0, 1)}


def best_so_far(trials: list) -> list[tuple[int, float]]:
    """``(trial number, best value up to it)`` for an optimisation-history plot."""
    best, out = float("-inf"), []
    for number, value, _ in trials:
        best = max(best, value)
        out.append((number, best))
    return out


def in_space(base, space) -> dict:
    """``base``'s values of the parameters ``space`` searches, clipped into their ranges (trial 0)."""
    return {f.name: type(getattr(base, f.name))(min(max(getattr(base, f.name), lo), hi))
            for f in fields(space) for lo, hi in [getattr(space, f.name)]}


def validation_split(train: pd.DataFrame, n: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's last ``n`` *training* interactions as validation (same rule as the test)."""
    return split_interactions(train, SplitSpec("last_n", n=n))


# --- ALS ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchSpace:
    """ALS ranges searched (log scale for ``reg`` and ``alpha``)."""

    rank: tuple[int, int] = (8, 128)
    reg: tuple[float, float] = (1e-3, 1.0)
    alpha: tuple[float, float] = (0.5, 100.0)
    iterations: tuple[int, int] = (5, 20)


def tune_als(train: pd.DataFrame, score, n_trials: int = 20, timeout_s: float | None = None, seed: int = 0,
             space: SearchSpace = SearchSpace(), engine: str = "implicit", on_trial: OnTrial | None = None) -> dict:
    """Search ALS parameters maximising ``score(model, fit, validation)`` on a split of ``train``.

    ``train`` holds the training interactions only (``user_id``, ``item_id``, ``ts``,
    ``confidence``); ``score`` is e.g. :func:`ndcg_score`. Returns :func:`optuna_search`'s dict
    (``best_params`` are :class:`AlsParams` fields).
    """
    fit, val = validation_split(train)
    d = AlsParams(seed=seed)

    def suggest(trial):
        return asdict(AlsParams(rank=trial.suggest_int("rank", *space.rank, log=True),
                                reg=trial.suggest_float("reg", *space.reg, log=True),
                                alpha=trial.suggest_float("alpha", *space.alpha, log=True),
                                iterations=trial.suggest_int("iterations", *space.iterations), seed=seed))

    return optuna_search(suggest, lambda p: score(train_als(engine, fit, AlsParams(**p)), fit, val),
                         {"rank": d.rank, "reg": d.reg, "alpha": d.alpha, "iterations": d.iterations},
                         n_trials, timeout_s, seed, on_trial, "ALS")


def ndcg_score(k: int = 10):
    """``score`` for :func:`tune_als`: NDCG@k of the model on the validation part (seen items excluded)."""
    from assets.evaluation.assets import evaluate_als_vs_popularity

    def score(model, fit: pd.DataFrame, val: pd.DataFrame) -> float:
        return evaluate_als_vs_popularity(fit, val, model, k)["als"][f"ndcg@{k}"]

    return score


def ndcg_all_users(model: FactorModel, train: pd.DataFrame, test: pd.DataFrame, k: int = 10) -> float:
    """NDCG@k over every test user with training history and a held-out item seen in training.

    Users (or held-out items) the model has no vector for count as 0, so a setting that serves
    fewer users (a higher ``min_count``) cannot look better by dropping the hard ones.
    """
    from assets.common.topk import interaction_mask
    from assets.evaluation.offline import evaluate_recommendations, recommend_from_factors

    users, items = pd.Index(model.user_ids), pd.Index(model.item_ids)
    eligible = test[test["user_id"].isin(train["user_id"]) & test["item_id"].isin(train["item_id"])]
    n_all = eligible["user_id"].nunique()
    if not n_all or not len(users):
        return 0.0
    rec = recommend_from_factors(model.user_factors, model.item_factors, k, exclude=interaction_mask(train, users, items))
    r = evaluate_recommendations(rec, eligible, users, items, k)
    return float(np.nan_to_num(r[f"ndcg@{k}"]) * r["n_eval_users"] / n_all)


# --- item2vec -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item2VecSpace:
    """item2vec ranges searched; a half-life near the top of its range is recency weighting off."""

    window: tuple[int, int] = (1, 10)
    negative: tuple[int, int] = (2, 25)
    min_count: tuple[int, int] = (1, 10)
    recency_half_life_days: tuple[float, float] = (0.01, 1000.0)


def tune_item2vec(train: pd.DataFrame, base=None, gap_seconds: int = 259_200, n_trials: int = 20,
                  timeout_s: float | None = None, seed: int = 0, k: int = 10, space: Item2VecSpace = Item2VecSpace(),
                  on_trial: OnTrial | None = None) -> dict:
    """Search window, negative, min_count and the recency half-life of item2vec.

    Each trial sessionizes the fit part of a per-user last-1 validation split of ``train`` (at
    ``gap_seconds``), trains skip-gram with ``base``'s other parameters and scores
    :func:`ndcg_all_users` on the validation part. Returns :func:`optuna_search`'s dict
    (``best_params`` are :class:`Item2VecParams` fields).
    """
    from assets.embeddings.item2vec import Item2VecParams, fit_item2vec, sessionize

    base = base or Item2VecParams(seed=seed)
    fit, val = validation_split(train)
    sessions = sessionize(fit, gap_seconds)

    def suggest(trial):
        return asdict(replace(base, window=trial.suggest_int("window", *space.window),
                              negative=trial.suggest_int("negative", *space.negative),
                              min_count=trial.suggest_int("min_count", *space.min_count),
                              recency_half_life_days=trial.suggest_float("recency_half_life_days", *space.recency_half_life_days,
                                                                         log=True)))

    counts = pd.Series([i for s in sessions["items"] for i in s]).value_counts() if len(sessions) else pd.Series(dtype=int)
    most = int(counts.max()) if len(counts) else 0

    def evaluate(p):
        # A min_count above every item's count leaves no vocabulary: a legitimate, worthless
        # setting, scored 0 without training. Any error of a training that can run propagates
        # (a bug must fail the search, not look like a bad trial).
        if p["min_count"] > most:
            log.info("item2vec trial with min_count %d > the most frequent item's %d: nothing to train, scored 0",
                     p["min_count"], most)
            return 0.0
        model = fit_item2vec(sessions, fit, Item2VecParams(**p))
        return ndcg_all_users(model, fit, val, k)

    return optuna_search(suggest, evaluate, in_space(base, space), n_trials, timeout_s, seed, on_trial, "item2vec")


# --- two-tower ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TwoTowerSpace:
    """Two-tower ranges searched (log scale for ``tau`` and ``lr``); early stopping still applies."""

    tau: tuple[float, float] = (0.01, 0.3)
    lr: tuple[float, float] = (2e-4, 1e-2)
    max_epochs: tuple[int, int] = (2, 30)


def tune_two_tower(kb: dict, base, n_trials: int = 10, timeout_s: float | None = None, seed: int = 0,
                   val_fraction: float = 0.1, space: TwoTowerSpace = TwoTowerSpace(), on_trial: OnTrial | None = None) -> dict:
    """Search the InfoNCE temperature, learning rate and epoch budget of the two-tower encoder.

    ``kb`` has ``train`` pairs (``query``, ``positive``, ``doc_id``) and ``train_docs`` (the FAQ
    entries they point to). A ``val_fraction`` of the distinct training queries is held out with
    :func:`assets.evaluation.faq.holdout` (and removed from the entries' questions, so nothing
    leaks); each trial trains on the rest with early stopping on those queries' retrieval MRR@10,
    which is also its score. Returns :func:`optuna_search`'s dict (``best_params`` are
    :class:`TwoTowerParams` fields).
    """
    from assets.embeddings.two_tower import TwoTowerParams, train_two_tower
    from assets.evaluation.faq import evaluate_encoder, holdout
    from assets.ingest.kb import doc_texts

    pairs, val_docs, val_queries = holdout(kb, val_fraction, seed=seed + 1)
    corpus = doc_texts(val_docs)

    def suggest(trial):
        return asdict(replace(base, tau=trial.suggest_float("tau", *space.tau, log=True),
                              lr=trial.suggest_float("lr", *space.lr, log=True),
                              max_epochs=trial.suggest_int("max_epochs", *space.max_epochs)))

    def evaluate(p):
        model = train_two_tower(pairs["query"].tolist(), pairs["positive"].tolist(), pairs["doc_id"].tolist(),
                                TwoTowerParams(**p), corpus=corpus,
                                validate=lambda m: evaluate_encoder(m.encode, val_docs, val_queries)["mrr@10"])
        return model.history["best_val_mrr"]

    return optuna_search(suggest, evaluate, in_space(base, space), n_trials, timeout_s, seed, on_trial, "two-tower")
