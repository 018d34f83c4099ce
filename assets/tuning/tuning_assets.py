"""Tuning assets: ALS, item2vec and the two-tower searched on training data only, every trial a
nested MLflow run under one parent run. Each output's ``best_params`` train the next challenger."""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from assets.common._shared import params_config, params_of
from assets.common.plots import curve_markdown
from assets.embeddings.item2vec import Item2VecParams, SessionSpec
from assets.embeddings.two_tower import TwoTowerParams
from assets.evaluation._shared import SplitConfig
from assets.evaluation.offline import split_interactions
from assets.tuning.protocol import TuningProtocol, best_so_far, searched_names
from assets.tuning.search import (
    Item2VecSpace,
    TwoTowerSpace,
    ndcg_score,
    tune_als,
    tune_item2vec,
    tune_two_tower,
)
from resources.kubernetes import gpu_op_tags
from resources.mlflow_tracking import MlflowResource, dagster_tags


class _Budget(dg.Config):
    def protocol(self) -> TuningProtocol:
        """The :class:`~assets.tuning.search.TuningProtocol` these fields describe."""
        return params_of(self, TuningProtocol)


TuningBudget = params_config(
    TuningProtocol,
    "TuningBudget",
    "A search's budget (whichever ends first; the defaults are always trial 0) and "
    "its protocol (:class:`~assets.tuning.search.TuningProtocol`: folds, confirmation margin, patience).",
    base=_Budget,
    extra={
        "n_trials": (int, 8, "trials at most"),
        "timeout_seconds": (float, 60.0, "seconds at most"),
        "seed": (int, 0, "seed of the sampler and of the trained models"),
    },
)


class AlsTuningConfig(TuningBudget, SplitConfig):
    """The split fields are ``als_evaluation``'s: its test part is cut and set aside first, then
    confirmation and validation folds are carved from the rest by the same rule."""

    k: int = 10


def tuned_output(
    context,
    mlflow_tracking: MlflowResource,
    name: str,
    metric: str,
    search: Callable,
    searched: list[str],
    title: str,
) -> dg.Output[dict]:
    """Run ``search(on_trial)`` inside a parent MLflow run, one nested run per trial; return the
    result (plus the ``searched`` parameter names) with its metadata and a best-so-far plot."""
    with mlflow_tracking.start_run(name, tags=dagster_tags(context)) as parent:

        def on_trial(number, params, value, seconds):
            with mlflow_tracking.child_run(parent, f"trial-{number}", tags={"trial": str(number)}):
                mlflow_tracking.log_params(params)
                mlflow_tracking.log_active_metrics({metric: value, "seconds": seconds})

        res = search(on_trial)
        conf = res["confirmation"]
        mlflow_tracking.log_params({f"best_{k}": v for k, v in res["best_params"].items() if k in searched})
        mlflow_tracking.log_active_metrics(
            {
                f"best_{metric}": res["best_value"],
                f"default_{metric}": res["default_value"],
                "confirm_default": conf["default"],
                "confirm_tuned": conf["tuned"],
                "adopted": float(res["adopted"]),
            }
        )
    best = {k: v for k, v in res["best_params"].items() if k in searched}
    verdict = "tuned parameters adopted" if res["adopted"] else "defaults kept"
    context.log.info(
        "%s best %s: %s %.4f (defaults %.4f); confirmation %.4f vs defaults %.4f (margin %.0f%%): %s",
        name,
        best,
        metric,
        res["best_value"],
        res["default_value"],
        conf["tuned"],
        conf["default"],
        100 * conf["margin"],
        verdict,
    )
    return dg.Output(
        {**res, "searched": searched},
        metadata={
            "best_params": dg.MetadataValue.json(best),
            "trials": len(res["trials"]),
            "adopted": res["adopted"],
            "verdict": verdict,
            "stopped_early": res["stopped_early"],
            f"best_{metric}": round(res["best_value"], 5),
            f"default_{metric}": round(res["default_value"], 5),
            "lift_vs_default": round(res["best_value"] / res["default_value"], 3)
            if res["default_value"]
            else 0.0,
            "confirmation_default": round(conf["default"], 5),
            "confirmation_tuned": round(conf["tuned"], 5),
            "confirmation_margin": conf["margin"],
            "seconds": res["seconds"],
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(parent.info.run_id)),
            "history_plot": dg.MetadataValue.md(
                curve_markdown(
                    best_so_far(res["trials"]), "trial", f"best {metric}", None, f"{title}: best so far"
                )
            ),
        },
    )


@dg.asset(kinds={"optuna", "mlflow"})
def als_tuning(
    context: dg.AssetExecutionContext,
    config: AlsTuningConfig,
    interactions: pd.DataFrame,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """Optuna TPE (seeded) over rank, reg, alpha and iterations with the single-node engine, scored by
    NDCG@k on a validation split carved from the training part; the test part is set aside first and
    never seen. One parent MLflow run, one nested run per trial; the best parameters are the output."""
    split = config.split_spec()
    train, _ = split_interactions(interactions, split)
    return tuned_output(
        context,
        mlflow_tracking,
        "als_tuning",
        f"val_ndcg@{config.k}",
        lambda on_trial: tune_als(
            train,
            ndcg_score(config.k),
            config.n_trials,
            config.timeout_seconds,
            config.seed,
            on_trial=on_trial,
            split=split,
            protocol=config.protocol(),
        ),
        ["rank", "reg", "alpha", "iterations"],
        "ALS tuning",
    )


class Item2VecTuningConfig(TuningBudget, SplitConfig):
    """The split fields are ``item2vec_evaluation``'s; ``gap_seconds`` as ``click_sequences``;
    ``dim`` and ``epochs`` (not searched) as ``item2vec_model``."""

    n_trials: int = 6
    timeout_seconds: float = 40.0
    k: int = 10
    gap_seconds: int = SessionSpec.gap_seconds
    dim: int = Item2VecParams.dim
    epochs: int = Item2VecParams.epochs


@dg.asset(kinds={"optuna", "mlflow"})
def item2vec_tuning(
    context: dg.AssetExecutionContext,
    config: Item2VecTuningConfig,
    interactions: pd.DataFrame,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """Optuna TPE over window, negative, min_count and the recency half-life of item2vec, scored by
    NDCG@k over every validation user (users it cannot serve count as 0) on a last-1 split carved
    from the training part; ``item2vec_evaluation``'s test part is set aside first."""
    split = config.split_spec()
    train, _ = split_interactions(interactions, split)
    base = Item2VecParams(dim=config.dim, epochs=config.epochs, seed=config.seed)
    searched = searched_names(Item2VecSpace())
    return tuned_output(
        context,
        mlflow_tracking,
        "item2vec_tuning",
        f"val_ndcg@{config.k}",
        lambda on_trial: tune_item2vec(
            train,
            base,
            config.gap_seconds,
            config.n_trials,
            config.timeout_seconds,
            config.seed,
            config.k,
            on_trial=on_trial,
            split=split,
            protocol=config.protocol(),
        ),
        searched,
        "item2vec tuning",
    )


class TwoTowerTuningConfig(TuningBudget):
    """The architecture (not searched) as ``two_tower_model``'s defaults; ``val_fraction`` of the
    distinct training queries are held out for confirmation, and as much again for each fold
    (one fold by default: each costs a training per trial)."""

    __overrides__ = {"folds": "each fold costs one encoder training per trial: one fits the 40 s budget"}

    n_trials: int = 6
    timeout_seconds: float = 40.0
    folds: int = 1
    val_fraction: float = TwoTowerParams.val_fraction
    dim: int = TwoTowerParams.dim
    out_dim: int = TwoTowerParams.out_dim
    batch_size: int = TwoTowerParams.batch_size


@dg.asset(kinds={"optuna", "torch", "mlflow"}, op_tags=gpu_op_tags())
def two_tower_tuning(
    context: dg.AssetExecutionContext,
    config: TwoTowerTuningConfig,
    kb_documents: dict,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """Optuna TPE over the InfoNCE temperature, learning rate and epoch budget, scored by retrieval
    MRR@10 of held-out *training* queries (removed from the pairs and the entries' questions);
    ``kb_documents``' test queries are never seen."""
    kb = {"train": pd.DataFrame(kb_documents["train"]), "train_docs": pd.DataFrame(kb_documents["docs"])}
    base = TwoTowerParams(
        dim=config.dim, out_dim=config.out_dim, batch_size=config.batch_size, seed=config.seed
    )
    searched = searched_names(TwoTowerSpace())
    return tuned_output(
        context,
        mlflow_tracking,
        "two_tower_tuning",
        "val_mrr@10",
        lambda on_trial: tune_two_tower(
            kb,
            base,
            config.n_trials,
            config.timeout_seconds,
            config.seed,
            config.val_fraction,
            on_trial=on_trial,
            protocol=config.protocol(),
        ),
        searched,
        "two-tower tuning",
    )
