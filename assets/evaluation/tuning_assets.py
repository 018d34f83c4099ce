"""``als_tuning``: search ALS parameters on the training data, every trial a nested MLflow run."""

from typing import Literal

import dagster as dg
import pandas as pd

import mlflow
from assets.common.plots import curve_markdown
from assets.evaluation.offline import SplitSpec, split_interactions
from assets.evaluation.tuning import ndcg_score, tune_als
from resources.mlflow_tracking import MlflowResource, dagster_tags


class AlsTuningConfig(dg.Config):
    """Budget (whichever ends first) and the split the *test* part is cut by (as ``als_evaluation``)."""

    n_trials: int = 8
    timeout_seconds: float = 60.0
    seed: int = 0
    k: int = 10
    split: Literal["last_n", "random"] = "last_n"
    holdout_n: int = 1


@dg.asset(kinds={"optuna", "mlflow"})
def als_tuning(context: dg.AssetExecutionContext, config: AlsTuningConfig, interactions: pd.DataFrame,
               mlflow_tracking: MlflowResource) -> dg.Output[dict]:
    """Optuna TPE (seeded) over rank, reg, alpha and iterations with the single-node engine, scored by
    NDCG@k on a validation split carved from the training part; the test part is set aside first and
    never seen. One parent MLflow run, one nested run per trial; the best parameters are the output."""
    train, _ = split_interactions(interactions, SplitSpec(config.split, n=config.holdout_n))
    mlflow_tracking._client()
    with mlflow_tracking.start_run("als_tuning", tags=dagster_tags(context)) as parent:
        def on_trial(number, params, value, seconds):
            with mlflow.start_run(run_name=f"trial-{number}", nested=True, tags={"trial": str(number)}):
                mlflow.log_params(params)
                mlflow.log_metrics({f"val_ndcg_at_{config.k}": value, "seconds": seconds})

        res = tune_als(train, ndcg_score(config.k), config.n_trials, config.timeout_seconds, config.seed, on_trial=on_trial)
        mlflow.log_params({f"best_{k}": v for k, v in res["best_params"].items()})
        mlflow.log_metrics({f"best_val_ndcg_at_{config.k}": res["best_value"], f"default_val_ndcg_at_{config.k}": res["default_value"]})
    best_so_far, history = float("-inf"), []
    for number, value, _ in res["trials"]:
        best_so_far = max(best_so_far, value)
        history.append((number, best_so_far))
    context.log.info("best %s: val NDCG@%d %.4f (defaults %.4f)", res["best_params"], config.k, res["best_value"], res["default_value"])
    return dg.Output(res, metadata={
        "best_params": dg.MetadataValue.json(res["best_params"]), "trials": len(res["trials"]),
        f"best_val_ndcg@{config.k}": round(res["best_value"], 5), f"default_val_ndcg@{config.k}": round(res["default_value"], 5),
        "seconds": res["seconds"], "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(parent.info.run_id)),
        "history_plot": dg.MetadataValue.md(curve_markdown(history, "trial", f"best val NDCG@{config.k}", None,
                                                           "ALS tuning: best so far"))})
