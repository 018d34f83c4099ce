"""Hyperparameter search for implicit ALS (Optuna TPE, seeded), scored on a validation split
carved from the *training* data, so the test split that evaluation reports on is never seen.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import pandas as pd

from assets.embeddings.als import AlsParams, train_als
from assets.evaluation.offline import SplitSpec, split_interactions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSpace:
    """Ranges searched (log scale for ``reg`` and ``alpha``)."""

    rank: tuple[int, int] = (8, 128)
    reg: tuple[float, float] = (1e-3, 1.0)
    alpha: tuple[float, float] = (0.5, 100.0)
    iterations: tuple[int, int] = (5, 20)


def validation_split(train: pd.DataFrame, n: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's last ``n`` *training* interactions as validation (same rule as the test)."""
    return split_interactions(train, SplitSpec("last_n", n=n))


def tune_als(train: pd.DataFrame, score, n_trials: int = 20, timeout_s: float | None = None, seed: int = 0,
             space: SearchSpace = SearchSpace(), engine: str = "implicit", on_trial=None) -> dict:
    """Search ALS parameters maximising ``score(model, fit, validation)`` on a split of ``train``.

    Parameters
    ----------
    train : DataFrame
        The training interactions only (``user_id``, ``item_id``, ``ts``, ``confidence``).
    score : callable
        ``score(model, fit_part, validation_part) -> float`` (higher is better), e.g. NDCG@10.
    n_trials, timeout_s : int, float
        Budget: whichever ends first.
    on_trial : callable, optional
        ``on_trial(number, params, value, seconds)`` after each trial (e.g. an MLflow child run).

    Returns
    -------
    dict
        ``best_params`` (AlsParams fields), ``best_value``, ``trials`` ([number, value, params]), ``default_value``
        (the defaults scored the same way), ``seconds``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fit, val = validation_split(train)
    t0 = time.perf_counter()
    default_value = float(score(train_als(engine, fit, AlsParams(seed=seed)), fit, val))

    def objective(trial):
        p = AlsParams(rank=trial.suggest_int("rank", *space.rank, log=True), reg=trial.suggest_float("reg", *space.reg, log=True),
                      alpha=trial.suggest_float("alpha", *space.alpha, log=True),
                      iterations=trial.suggest_int("iterations", *space.iterations), seed=seed)
        ts = time.perf_counter()
        value = float(score(train_als(engine, fit, p), fit, val))
        if on_trial:
            on_trial(trial.number, asdict(p), value, time.perf_counter() - ts)
        return value

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({"rank": 32, "reg": 0.05, "alpha": 10.0, "iterations": 12})  # the defaults are a candidate too
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s)
    best = {**study.best_params, "seed": seed}
    trials = [[t.number, float(t.value), t.params] for t in study.trials if t.value is not None]
    log.info("ALS tuning: best %.4f vs default %.4f after %d trials", study.best_value, default_value, len(trials))
    return {"best_params": best, "best_value": float(study.best_value), "trials": trials, "default_value": default_value,
            "seconds": round(time.perf_counter() - t0, 1)}


def ndcg_score(k: int = 10):
    """``score`` for :func:`tune_als`: NDCG@k of the model on the validation part (seen items excluded)."""
    from assets.evaluation.assets import evaluate_als_vs_popularity

    def score(model, fit: pd.DataFrame, val: pd.DataFrame) -> float:
        return evaluate_als_vs_popularity(fit, val, model, k)["als"][f"ndcg@{k}"]

    return score
