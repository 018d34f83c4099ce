"""The three families' searches on the one protocol (:mod:`assets.tuning.protocol`): ALS (rank,
reg, alpha, iterations), item2vec (window, negative, min_count, recency half-life) and the two-tower
encoder (tau, lr, epoch budget). Each returns :func:`~assets.tuning.protocol.confirmed_search`'s
result (``best_params``, ``adopted``, ``confirmation``, ``trials``); the tuning assets hand it to
the next model's training.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.item2vec import SessionSpec
from assets.evaluation.offline import SplitSpec
from assets.tuning.protocol import OnTrial, TuningProtocol, confirmation_and_folds, confirmed_search, in_space

log = logging.getLogger(__name__)


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
ALS_ANCHORS = (
    {"rank": 10, "reg": 0.1, "alpha": 1.0, "iterations": 10},
    {"rank": 100, "reg": 0.1, "alpha": 1.0, "iterations": 15},
)


def rank_bound(train: pd.DataFrame, space: SearchSpace = SearchSpace()) -> int:
    """The largest rank searched: ``rank_share`` of the smaller of the user and item counts,
    clipped into ``space.rank`` (a factor per four users fits the users, not their tastes)."""
    cap = space.rank_share * min(train["user_id"].nunique(), train["item_id"].nunique())
    return int(min(max(cap, space.rank[0]), space.rank[1]))


def tune_als(
    train: pd.DataFrame,
    score,
    n_trials: int = 20,
    timeout_s: float | None = None,
    seed: int = 0,
    space: SearchSpace = SearchSpace(),
    engine: str = "implicit",
    on_trial: OnTrial | None = None,
    split: SplitSpec = SplitSpec(),
    protocol: TuningProtocol = TuningProtocol(),
    defaults: AlsParams | None = None,
) -> dict:
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
        return asdict(
            AlsParams(
                rank=trial.suggest_int("rank", space.rank[0], top, log=True),
                reg=trial.suggest_float("reg", *space.reg, log=True),
                alpha=trial.suggest_float("alpha", *space.alpha, log=True),
                iterations=trial.suggest_int("iterations", *space.iterations),
                seed=d.seed,
            )
        )

    def fold_score(p, fold):
        fit, held = fold
        return score(train_als(engine, fit, AlsParams(**p)), fit, held)

    bounded = replace(space, rank=(space.rank[0], top))
    anchors = [in_space(replace(d, **a), bounded) for a in ALS_ANCHORS]
    res = confirmed_search(
        suggest,
        fold_score,
        folds,
        confirm,
        asdict(d),
        in_space(d, bounded),
        n_trials,
        timeout_s,
        seed,
        protocol,
        on_trial,
        "ALS",
        anchors,
    )
    return {**res, "rank_bound": top}


def ndcg_score(k: int = 10):
    """``score`` for :func:`tune_als`: NDCG@k of the model on the held-out part (seen items excluded)."""
    from assets.evaluation.offline import evaluate_als_vs_popularity

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
    rec = recommend_from_factors(
        model.user_factors, model.item_factors, k, exclude=interaction_mask(train, users, items)
    )
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


def tune_item2vec(
    train: pd.DataFrame,
    base=None,
    gap_seconds: int = SessionSpec.gap_seconds,
    n_trials: int = 20,
    timeout_s: float | None = None,
    seed: int = 0,
    k: int = 10,
    space: Item2VecSpace = Item2VecSpace(),
    on_trial: OnTrial | None = None,
    split: SplitSpec = SplitSpec(),
    protocol: TuningProtocol = TuningProtocol(),
) -> dict:
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
        return asdict(
            replace(
                base,
                window=trial.suggest_int("window", *space.window),
                negative=trial.suggest_int("negative", *space.negative),
                min_count=trial.suggest_int("min_count", *space.min_count),
                recency_half_life_days=trial.suggest_float(
                    "recency_half_life_days", *space.recency_half_life_days, log=True
                ),
            )
        )

    def fold_score(p, fold):
        sessions, fit, held_out, most = fold
        # A min_count above every item's count leaves no vocabulary: a legitimate, worthless
        # setting, scored 0 without training. Any error of a training that can run propagates
        # (a bug must fail the search, not look like a bad trial).
        if p["min_count"] > most:
            log.info(
                "item2vec trial with min_count %d > the most frequent item's %d: nothing to train, scored 0",
                p["min_count"],
                most,
            )
            return 0.0
        return ndcg_all_users(fit_item2vec(sessions, fit, Item2VecParams(**p)), fit, held_out, k)

    return confirmed_search(
        suggest,
        fold_score,
        folds,
        confirm,
        asdict(base),
        in_space(base, space),
        n_trials,
        timeout_s,
        seed,
        protocol,
        on_trial,
        "item2vec",
    )


# --- two-tower ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoTowerSpace:
    """Two-tower ranges searched (log scale for ``tau`` and ``lr``); early stopping still applies.

    ``init`` lists the starts to choose between: ``("scratch", "pretrained")`` searches the
    pretrained start too (its trials fine-tune at ``finetune_lr``, so ``lr`` does not apply to
    them); one start (the default) searches none, since a pretrained trial costs minutes.
    """

    tau: tuple[float, float] = (0.01, 0.3)
    lr: tuple[float, float] = (2e-4, 1e-2)
    max_epochs: tuple[int, int] = (2, 30)
    init: tuple[str, ...] = ("scratch",)


def query_holdouts(kb: dict, fraction: float, n_folds: int, seed: int = 0):
    """``(confirmation, folds)`` of a KB's training queries, each ``(pairs, docs, held_queries)``.

    The confirmation queries are held out first (:func:`assets.evaluation.faq.holdout`); every
    fold holds a further ``fraction`` out of the rest, so no fold trains on a confirmation query.
    """
    from assets.evaluation.faq import holdout

    confirm = holdout(kb, fraction, seed=seed + 1)
    rest = {"train": confirm[0], "train_docs": confirm[1]}
    return confirm, [holdout(rest, fraction, seed=seed + 2 + j) for j in range(n_folds)]


def tune_two_tower(
    kb: dict,
    base,
    n_trials: int = 10,
    timeout_s: float | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    space: TwoTowerSpace = TwoTowerSpace(),
    on_trial: OnTrial | None = None,
    protocol: TuningProtocol = TuningProtocol(folds=1),
) -> dict:
    """Search the InfoNCE temperature, learning rate and epoch budget of the two-tower encoder, and
    its start where ``space.init`` offers more than one.

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
        init = trial.suggest_categorical("init", list(space.init)) if len(space.init) > 1 else base.init
        return asdict(
            replace(
                base,
                tau=trial.suggest_float("tau", *space.tau, log=True),
                lr=trial.suggest_float("lr", *space.lr, log=True),
                max_epochs=trial.suggest_int("max_epochs", *space.max_epochs),
                init=init,
            )
        )

    def fold_score(p, fold):
        pairs, docs, queries = fold
        model = train_two_tower(
            pairs["query"].tolist(),
            pairs["positive"].tolist(),
            pairs["doc_id"].tolist(),
            TwoTowerParams(**p),
            corpus=doc_texts(docs),
            validate=lambda m: evaluate_encoder(m.encode, docs, queries)["mrr@10"],
        )
        return model.history["best_val_mrr"]

    return confirmed_search(
        suggest,
        fold_score,
        folds,
        confirm,
        asdict(base),
        in_space(base, space),
        n_trials,
        timeout_s,
        seed,
        protocol,
        on_trial,
        "two-tower",
    )
