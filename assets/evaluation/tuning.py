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
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd

from assets.common.tuned import adopted_fields, params_source  # noqa: F401 (this module's public API too)
from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
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


def optuna_search(suggest: Callable, evaluate: Callable[[dict], float], defaults: dict, n_trials: int,
                  timeout_s: float | None = None, seed: int = 0, on_trial: OnTrial | None = None, label: str = "",
                  patience: int | None = None, anchors: Sequence[dict] = ()) -> dict:
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
    log.info("%s tuning: best %.4f vs default %.4f after %d trials%s", label, study.best_value, done[0].value, len(done),
             f" (stopped: no gain for {patience} trials)" if stopped else "")
    return {"best_params": study.best_trial.user_attrs["params"], "best_trial": study.best_trial.number,
            "best_value": float(study.best_value), "default_params": done[0].user_attrs["params"],
            "default_value": float(done[0].value), "trials": [[t.number, float(t.value), t.params] for t in done],
            "stopped_early": bool(stopped), "seconds": round(time.perf_counter() - t0, 1)}


def confirmed_search(suggest: Callable, score: Callable, folds: Sequence, confirm, baseline: dict, start: dict,
                     n_trials: int, timeout_s: float | None = None, seed: int = 0,
                     protocol: TuningProtocol = TuningProtocol(), on_trial: OnTrial | None = None, label: str = "",
                     anchors: Sequence[dict] = ()) -> dict:
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
    res = optuna_search(suggest, lambda p: float(np.mean([score(p, f) for f in folds])), start, n_trials, timeout_s,
                        seed, on_trial, label, protocol.patience, anchors)
    c_default = float(score(baseline, confirm))
    same = res["best_params"] == baseline
    c_tuned = c_default if same else float(score(res["best_params"], confirm))
    adopted = not same and c_tuned > c_default and c_tuned >= c_default * (1 + protocol.confirm_margin)
    lift = c_tuned / c_default if c_default else (float("inf") if c_tuned > 0 else 1.0)
    res.update(baseline_params=baseline, adopted=bool(adopted), confirmation={"default": c_default, "tuned": c_tuned,
                                                    "margin": protocol.confirm_margin, "lift": lift})
    log.info("%s confirmation: tuned %.4f vs defaults %.4f (need x%.3f): %s", label, c_tuned, c_default,
             1 + protocol.confirm_margin, "tuned adopted" if adopted else "defaults kept")
    return res


def best_so_far(trials: list) -> list[tuple[int, float]]:
    """``(trial number, best value up to it)`` for an optimisation-history plot."""
    best, out = float("-inf"), []
    for number, value, _ in trials:
        best = max(best, value)
        out.append((number, best))
    return out


def in_space(base, space) -> dict:
    """``base``'s values of the parameters ``space`` searches (its ``(low, high)`` fields), clipped
    into their ranges: trial 0. (A log range cannot take a default of 0, such as "recency off";
    confirmation compares against ``base`` itself.)"""
    return {f.name: type(getattr(base, f.name))(min(max(getattr(base, f.name), lo), hi))
            for f in fields(space) if isinstance(getattr(space, f.name), tuple) for lo, hi in [getattr(space, f.name)]}


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

@dataclass(frozen=True)
class SearchSpace:
    """ALS ranges searched, ``reg`` and ``alpha`` on log scales.

    They sit around what Spark and ``implicit`` recommend (``regParam`` 0.1, scaled per row as
    ALS-WR here; ``alpha`` 1, and 40 in Hu et al.). The top of ``rank`` is also bounded by the
    data (:func:`rank_bound`).
    """

    rank: tuple[int, int] = (8, 128)
    reg: tuple[float, float] = (0.01, 2.0)
    alpha: tuple[float, float] = (0.1, 40.0)
    iterations: tuple[int, int] = (8, 20)
    rank_share: float = 0.25


# Tried right after the defaults: Spark MLlib's documented defaults (rank 10, regParam 0.1, alpha 1,
# 10 iterations) and the same at the rank ``implicit`` defaults to (100 factors, 15 iterations).
ALS_ANCHORS = ({"rank": 10, "reg": 0.1, "alpha": 1.0, "iterations": 10},
               {"rank": 100, "reg": 0.1, "alpha": 1.0, "iterations": 15})


def rank_bound(train: pd.DataFrame, space: SearchSpace = SearchSpace()) -> int:
    """The largest rank searched: ``rank_share`` of the smaller of the user and item counts,
    clipped into ``space.rank`` (a factor per four users fits the users, not their tastes)."""
    cap = space.rank_share * min(train["user_id"].nunique(), train["item_id"].nunique())
    return int(min(max(cap, space.rank[0]), space.rank[1]))


def tune_als(train: pd.DataFrame, score, n_trials: int = 20, timeout_s: float | None = None, seed: int = 0,
             space: SearchSpace = SearchSpace(), engine: str = "implicit", on_trial: OnTrial | None = None,
             split: SplitSpec = SplitSpec(), protocol: TuningProtocol = TuningProtocol(),
             defaults: AlsParams | None = None) -> dict:
    """Search ALS parameters maximising ``score(model, fit, held_out)``, by :func:`confirmed_search`.

    Parameters
    ----------
    train : DataFrame
        The training interactions only (``user_id``, ``item_id``, ``ts``, ``confidence``).
    score : callable
        ``score(model, fit, held_out) -> float``, e.g. :func:`ndcg_score`.
    split : SplitSpec
        The evaluation's split rule; confirmation and folds are carved from ``train`` by it.
    defaults : AlsParams, optional
        Trial 0 and what is kept when confirmation rejects the winner (``AlsParams(seed=seed)``).

    Returns
    -------
    dict
        :func:`confirmed_search`'s dict (``best_params`` are :class:`AlsParams` fields) and
        ``rank_bound``.
    """
    search, held, folds = confirmation_and_folds(train, split, protocol.folds)
    confirm = (search, held)
    d = defaults or AlsParams(seed=seed)
    top = rank_bound(folds[0][0], space)

    def suggest(trial):
        return asdict(AlsParams(rank=trial.suggest_int("rank", space.rank[0], top, log=True),
                                reg=trial.suggest_float("reg", *space.reg, log=True),
                                alpha=trial.suggest_float("alpha", *space.alpha, log=True),
                                iterations=trial.suggest_int("iterations", *space.iterations), seed=d.seed))

    def fold_score(p, fold):
        fit, held = fold
        return score(train_als(engine, fit, AlsParams(**p)), fit, held)

    bounded = replace(space, rank=(space.rank[0], top))
    anchors = [in_space(replace(d, **a), bounded) for a in ALS_ANCHORS]
    res = confirmed_search(suggest, fold_score, folds, confirm, asdict(d), in_space(d, bounded), n_trials, timeout_s, seed,
                           protocol, on_trial, "ALS", anchors)
    return {**res, "rank_bound": top}


def ndcg_score(k: int = 10):
    """``score`` for :func:`tune_als`: NDCG@k of the model on the held-out part (seen items excluded)."""
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
                  on_trial: OnTrial | None = None, split: SplitSpec = SplitSpec(),
                  protocol: TuningProtocol = TuningProtocol()) -> dict:
    """Search window, negative, min_count and the recency half-life of item2vec.

    Confirmation and folds are carved from ``train`` by the evaluation's ``split``. Each trial
    sessionizes a fold's fit part (at ``gap_seconds``), trains skip-gram with ``base``'s other
    parameters and scores :func:`ndcg_all_users` on its held-out part. Returns
    :func:`confirmed_search`'s dict (``best_params`` are :class:`Item2VecParams` fields).
    """
    from assets.embeddings.item2vec import Item2VecParams, fit_item2vec, sessionize

    base = base or Item2VecParams(seed=seed)
    search, held, raw_folds = confirmation_and_folds(train, split, protocol.folds)

    def prepare(fit, held_out):
        # Sessionized once per fold; the most frequent item's count bounds a useful min_count.
        sessions = sessionize(fit, gap_seconds)
        counts = pd.Series([i for s in sessions["items"] for i in s]).value_counts()
        return sessions, fit, held_out, int(counts.max()) if len(counts) else 0

    confirm, folds = prepare(search, held), [prepare(f, v) for f, v in raw_folds]

    def suggest(trial):
        return asdict(replace(base, window=trial.suggest_int("window", *space.window),
                              negative=trial.suggest_int("negative", *space.negative),
                              min_count=trial.suggest_int("min_count", *space.min_count),
                              recency_half_life_days=trial.suggest_float("recency_half_life_days", *space.recency_half_life_days,
                                                                         log=True)))

    def fold_score(p, fold):
        sessions, fit, held_out, most = fold
        # A min_count above every item's count leaves no vocabulary: a legitimate, worthless
        # setting, scored 0 without training. Any error of a training that can run propagates
        # (a bug must fail the search, not look like a bad trial).
        if p["min_count"] > most:
            log.info("item2vec trial with min_count %d > the most frequent item's %d: nothing to train, scored 0",
                     p["min_count"], most)
            return 0.0
        return ndcg_all_users(fit_item2vec(sessions, fit, Item2VecParams(**p)), fit, held_out, k)

    return confirmed_search(suggest, fold_score, folds, confirm, asdict(base), in_space(base, space), n_trials, timeout_s,
                            seed, protocol, on_trial, "item2vec")


# --- two-tower ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TwoTowerSpace:
    """Two-tower ranges searched (log scale for ``tau`` and ``lr``); early stopping still applies."""

    tau: tuple[float, float] = (0.01, 0.3)
    lr: tuple[float, float] = (2e-4, 1e-2)
    max_epochs: tuple[int, int] = (2, 30)


def query_holdouts(kb: dict, fraction: float, n_folds: int, seed: int = 0):
    """``(confirmation, folds)`` of a KB's training queries, each ``(pairs, docs, held_queries)``.

    The confirmation queries are held out first (:func:`assets.evaluation.faq.holdout`); every
    fold holds a further ``fraction`` out of the rest, so no fold trains on a confirmation query.
    """
    from assets.evaluation.faq import holdout

    confirm = holdout(kb, fraction, seed=seed + 1)
    rest = {"train": confirm[0], "train_docs": confirm[1]}
    return confirm, [holdout(rest, fraction, seed=seed + 2 + j) for j in range(n_folds)]


def tune_two_tower(kb: dict, base, n_trials: int = 10, timeout_s: float | None = None, seed: int = 0,
                   val_fraction: float = 0.1, space: TwoTowerSpace = TwoTowerSpace(), on_trial: OnTrial | None = None,
                   protocol: TuningProtocol = TuningProtocol(folds=1)) -> dict:
    """Search the InfoNCE temperature, learning rate and epoch budget of the two-tower encoder.

    ``kb`` has ``train`` pairs (``query``, ``positive``, ``doc_id``) and ``train_docs`` (the FAQ
    entries they point to). Held-out training queries, shaped like the test (:func:`query_holdouts`,
    ``val_fraction`` each), give the confirmation split and the folds. Each trial trains on a fold's
    pairs with early stopping on its held-out queries' retrieval MRR@10, which is also its score.
    Returns :func:`confirmed_search`'s dict (``best_params`` are :class:`TwoTowerParams` fields).
    """
    from assets.embeddings.two_tower import TwoTowerParams, train_two_tower
    from assets.evaluation.faq import evaluate_encoder
    from assets.ingest.kb import doc_texts

    confirm, folds = query_holdouts(kb, val_fraction, protocol.folds, seed)

    def suggest(trial):
        return asdict(replace(base, tau=trial.suggest_float("tau", *space.tau, log=True),
                              lr=trial.suggest_float("lr", *space.lr, log=True),
                              max_epochs=trial.suggest_int("max_epochs", *space.max_epochs)))

    def fold_score(p, fold):
        pairs, docs, queries = fold
        model = train_two_tower(pairs["query"].tolist(), pairs["positive"].tolist(), pairs["doc_id"].tolist(),
                                TwoTowerParams(**p), corpus=doc_texts(docs),
                                validate=lambda m: evaluate_encoder(m.encode, docs, queries)["mrr@10"])
        return model.history["best_val_mrr"]

    return confirmed_search(suggest, fold_score, folds, confirm, asdict(base), in_space(base, space), n_trials, timeout_s,
                            seed, protocol, on_trial, "two-tower")
