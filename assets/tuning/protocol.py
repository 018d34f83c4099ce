"""Hyperparameter search (Optuna TPE, seeded) for ALS, item2vec and the two-tower encoder.

The protocol (:class:`TuningProtocol`) is the same for every family:

1. A **confirmation** split is carved from the *training* data first, by the same rule as the
   family's test split (the evaluation's :class:`SplitSpec`). The search never sees it.
2. The rest is cut into ``folds`` **validation** folds by that rule again (random: repeated random
   draws of the same fraction; last-n: rolling, each fold one step further back in time), and a
   trial's score is its mean over the folds, so it rests on several times more held-out hits.
3. TPE (multivariate, seeded) runs from the defaults (trial 0) until the trial or time budget
   ends, or the best has not moved for ``patience`` trials.
4. The winner and the defaults are both scored on the confirmation split. The winner is
   **adopted** only when it beats the defaults there by ``confirm_margin``; otherwise the defaults
   are kept, and the output says so (``adopted``, ``confirmation``).

The test split that evaluation reports on is set aside before any of this and never seen.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from assets.evaluation.offline import SplitSpec, split_interactions

log = logging.getLogger(__name__)

OnTrial = Callable[[int, dict, float, float], None]


@dataclass(frozen=True)
class TuningProtocol:
    """How a search is validated, stopped and confirmed.

    Attributes
    ----------
    folds : int
        Validation folds carved from the search part; a trial scores their mean.
    confirm_margin : float
        Relative gain over the defaults, on the confirmation split, needed to adopt the winner
        (0.02: at least 2 % better).
    patience : int or None
        Stop when this many trials in a row have not improved the best; None runs the budget.
    """

    folds: int = 3
    confirm_margin: float = 0.02
    patience: int | None = 20

    def __post_init__(self):
        if self.folds < 1:
            raise ValueError(f"folds must be >= 1, got {self.folds}")
        if self.confirm_margin < 0:
            raise ValueError(f"confirm_margin must be >= 0, got {self.confirm_margin}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")


def optuna_search(
    suggest: Callable,
    evaluate: Callable[[dict], float],
    defaults: dict,
    n_trials: int,
    timeout_s: float | None = None,
    seed: int = 0,
    on_trial: OnTrial | None = None,
    label: str = "",
    patience: int | None = None,
    anchors: Sequence[dict] = (),
) -> dict:
    """Maximise ``evaluate(params)`` over ``suggest(trial) -> params`` with seeded TPE.

    Parameters
    ----------
    suggest : callable
        ``suggest(optuna.Trial) -> dict``: the full parameters of one trial (searched and fixed ones).
    evaluate : callable
        ``evaluate(params) -> float``, higher is better, scored on validation data only.
    defaults : dict
        The searched parameters' default values; enqueued as trial 0.
    anchors : sequence of dict
        Further settings tried next, before TPE samples (e.g. the engines' documented defaults).
    n_trials, timeout_s : int, float
        Budget: whichever ends first (a running trial is never cut short).
    on_trial : callable, optional
        ``on_trial(number, params, value, seconds)`` after each trial (e.g. an MLflow child run).
    patience : int, optional
        Stop early once this many trials in a row have not beaten the best.

    Returns
    -------
    dict
        ``best_params`` (full parameters), ``best_trial``, ``best_value``, ``default_params`` (full)
        and ``default_value`` (trial 0), ``trials`` (``[number, value, searched params]``),
        ``stopped_early`` and ``seconds``.
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

    stopped = []

    def stop_when_stale(study, trial):
        if patience and trial.number - study.best_trial.number >= patience:
            stopped.append(trial.number)
            study.stop()

    with warnings.catch_warnings():  # multivariate TPE is marked experimental; it models rank x reg jointly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for start in (defaults, *anchors):
        study.enqueue_trial(start)
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s, callbacks=[stop_when_stale])
    done = [t for t in study.trials if t.value is not None]
    log.info(
        "%s tuning: best %.4f vs default %.4f after %d trials%s",
        label,
        study.best_value,
        done[0].value,
        len(done),
        f" (stopped: no gain for {patience} trials)" if stopped else "",
    )
    return {
        "best_params": study.best_trial.user_attrs["params"],
        "best_trial": study.best_trial.number,
        "best_value": float(study.best_value),
        "default_params": done[0].user_attrs["params"],
        "default_value": float(done[0].value),
        "trials": [[t.number, float(t.value), t.params] for t in done],
        "stopped_early": bool(stopped),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def confirmed_search(
    suggest: Callable,
    score: Callable,
    folds: Sequence,
    confirm,
    baseline: dict,
    start: dict,
    n_trials: int,
    timeout_s: float | None = None,
    seed: int = 0,
    protocol: TuningProtocol = TuningProtocol(),
    on_trial: OnTrial | None = None,
    label: str = "",
    anchors: Sequence[dict] = (),
) -> dict:
    """:func:`optuna_search` over the mean of ``score(params, fold)`` on ``folds``, then confirmation.

    Parameters
    ----------
    score : callable
        ``score(params, fold) -> float``: trains on a fold's training part, scores its held-out part.
    folds : sequence
        The validation folds; ``confirm`` is one more such fold that the search never sees.
    baseline : dict
        The full default parameters: what is kept unless the winner confirms.
    start : dict
        The searched parameters of trial 0 (``baseline``'s, clipped into the ranges).
    anchors : sequence of dict
        Searched parameters tried right after trial 0 (see :func:`optuna_search`).

    Returns
    -------
    dict
        :func:`optuna_search`'s dict plus ``baseline_params``, ``adopted`` and ``confirmation``
        (``default``, ``tuned``, ``margin``, ``lift``). The winner is adopted when its confirmation
        score is at least ``(1 + protocol.confirm_margin)`` times the baseline's, and higher.
    """
    res = optuna_search(
        suggest,
        lambda p: float(np.mean([score(p, f) for f in folds])),
        start,
        n_trials,
        timeout_s,
        seed,
        on_trial,
        label,
        protocol.patience,
        anchors,
    )
    c_default = float(score(baseline, confirm))
    same = res["best_params"] == baseline
    c_tuned = c_default if same else float(score(res["best_params"], confirm))
    adopted = not same and c_tuned > c_default and c_tuned >= c_default * (1 + protocol.confirm_margin)
    lift = c_tuned / c_default if c_default else (float("inf") if c_tuned > 0 else 1.0)
    res.update(
        baseline_params=baseline,
        adopted=bool(adopted),
        confirmation={
            "default": c_default,
            "tuned": c_tuned,
            "margin": protocol.confirm_margin,
            "lift": lift,
        },
    )
    log.info(
        "%s confirmation: tuned %.4f vs defaults %.4f (need x%.3f): %s",
        label,
        c_tuned,
        c_default,
        1 + protocol.confirm_margin,
        "tuned adopted" if adopted else "defaults kept",
    )
    return res


def best_so_far(trials: list) -> list[tuple[int, float]]:
    """``(trial number, best value up to it)`` for an optimisation-history plot."""
    best, out = float("-inf"), []
    for number, value, _ in trials:
        best = max(best, value)
        out.append((number, best))
    return out


def searched_names(space) -> list[str]:
    """The parameters ``space`` searches: its ``(low, high)`` ranges, and its choices (tuples of
    strings) that offer more than one."""
    out = []
    for f in fields(space):
        v = getattr(space, f.name)
        if isinstance(v, tuple) and (all(isinstance(x, str) for x in v) and len(v) > 1 or _is_range(v)):
            out.append(f.name)
    return out


def _is_range(v: tuple) -> bool:
    return len(v) == 2 and all(isinstance(x, (int, float)) for x in v)


def in_space(base, space) -> dict:
    """``base``'s values of the parameters ``space`` searches, clipped into their ranges (a choice:
    ``base``'s where offered, else the first): trial 0. (A log range cannot take a default of 0,
    such as "recency off"; confirmation compares against ``base`` itself.)"""
    out = {}
    for name in searched_names(space):
        v, b = getattr(space, name), getattr(base, name)
        out[name] = (b if b in v else v[0]) if not _is_range(v) else type(b)(min(max(b, v[0]), v[1]))
    return out


# --- splits -------------------------------------------------------------------------------------


def rolled_back(df: pd.DataFrame, steps: int) -> pd.DataFrame:
    """``df`` without each user's last ``steps`` interactions by time (users keep at least one)."""
    if steps <= 0:
        return df
    d = df.sort_values(["user_id", "ts"], kind="stable")
    from_end = d.groupby("user_id").cumcount(ascending=False).to_numpy()
    size = d.groupby("user_id")["item_id"].transform("size").to_numpy()
    return d[(from_end >= steps) | (from_end == size - 1)].reset_index(drop=True)


def confirmation_and_folds(train: pd.DataFrame, split: SplitSpec, n_folds: int):
    """``(search_part, confirmation, folds)`` of *training* data, all by the evaluation's rule ``split``.

    The confirmation hold-out is carved from ``train`` first; the ``n_folds`` validation folds
    ``(fit, held_out)`` are carved from what is left. For ``random``, each carve draws with its own
    seed (same fraction); for ``last_n``, fold ``j`` holds out the ``n`` interactions before the
    last ``j * n`` and drops those later ones, so no fit part sees the future of its hold-out.
    """
    if split.method == "random":
        search, confirm = split_interactions(train, replace(split, seed=split.seed + 1))
        folds = [split_interactions(search, replace(split, seed=split.seed + 2 + j)) for j in range(n_folds)]
    else:
        search, confirm = split_interactions(train, split)
        folds = [split_interactions(rolled_back(search, j * split.n), split) for j in range(n_folds)]
    return search, confirm, folds


# --- ALS ----------------------------------------------------------------------------------------
