"""Offline evaluation of ALS and item2vec against a popularity baseline on a held-out split."""

import dagster as dg
import pandas as pd

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.item2vec import SessionSpec
from assets.evaluation._shared import SplitConfig
from assets.evaluation.offline import (
    evaluate_als_vs_popularity,
    evaluate_models_same_users,
    split_interactions,
)
from resources.mlflow_tracking import MlflowResource
from resources.spark import SparkResource


class EvaluationConfig(SplitConfig):
    """The held-out split, ``k``, and the session gap item2vec refits use (``click_sequences``')."""

    k: int = 10
    session_gap_seconds: int = SessionSpec.gap_seconds


@dg.asset(
    kinds={"spark", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            "als_beats_popularity",
            asset="als_evaluation",
            description="ALS NDCG@k on the held-out split exceeds the popularity baseline's",
        )
    ],
)
def als_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    interactions: pd.DataFrame,
    als_model: FactorModel,
    spark: SparkResource,
    mlflow_tracking: MlflowResource,
):
    """Refit ALS with the registered version's parameters on a train split; score it and popularity.

    The metrics are logged into the model version's MLflow run, so the registry shows how every
    version evaluated.
    """
    split = config.split_spec()
    train, test = split_interactions(interactions, split)
    p = als_model.params
    params = AlsParams.from_dict(p)
    engine = p.get("engine", "spark")
    eval_model = train_als(engine, train, params, spark=spark.get_session() if engine == "spark" else None)
    res = evaluate_als_vs_popularity(train, test, eval_model, config.k)
    k = config.k
    flat = {f"{m}_{name}": round(v, 5) for m, d in res.items() for name, v in d.items()}
    run_id = p.get("mlflow_run_id")
    if run_id:
        mlflow_tracking.log_metrics(run_id, flat, prefix="eval_")
    a, b = res["als"][f"ndcg@{k}"], res["popularity"][f"ndcg@{k}"]
    context.log.info("NDCG@%d ALS %.4f vs popularity %.4f", k, a, b)
    yield dg.AssetCheckResult(
        check_name="als_beats_popularity",
        passed=a > b,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"als_ndcg": a, "popularity_ndcg": b, "lift": round(a / b, 3) if b else None},
    )
    table = pd.DataFrame(res).T.reset_index(names="model")
    yield dg.Output(
        {"split": split.__dict__, "k": k, "metrics": res, "model_version": p.get("model_version")},
        metadata={
            **flat,
            "train_rows": len(train),
            "test_rows": len(test),
            "model_version": str(p.get("model_version", "")),
            "ndcg_lift_vs_popularity": round(a / b, 3) if b else 0.0,
            "table": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f")),
            **({"mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(run_id))} if run_id else {}),
        },
    )


@dg.asset(
    kinds={"gensim", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            "item2vec_beats_popularity",
            asset="item2vec_evaluation",
            description="item2vec NDCG@k on the held-out split exceeds popularity's",
        )
    ],
)
def item2vec_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    interactions: pd.DataFrame,
    item2vec_model: FactorModel,
    mlflow_tracking: MlflowResource,
):
    """Refit item2vec (same parameters) on a train split; score it, implicit ALS and popularity on
    the same held-out interactions and users."""
    from assets.embeddings.item2vec import Item2VecParams, fit_item2vec, sessionize

    split = config.split_spec()
    train, test = split_interactions(interactions, split)
    p = item2vec_model.params
    params = Item2VecParams(**{k: p[k] for k in Item2VecParams.__dataclass_fields__})
    sessions = sessionize(train, config.session_gap_seconds)
    res = evaluate_models_same_users(
        train,
        test,
        {"item2vec": fit_item2vec(sessions, train, params), "als": train_als("implicit", train, AlsParams())},
        config.k,
    )
    k = config.k
    flat = {f"{m}_{name}": round(v, 5) for m, d in res.items() for name, v in d.items()}
    if p.get("mlflow_run_id"):
        mlflow_tracking.log_metrics(p["mlflow_run_id"], flat, prefix="eval_")
    a, b = res["item2vec"][f"ndcg@{k}"], res["popularity"][f"ndcg@{k}"]
    yield dg.AssetCheckResult(
        check_name="item2vec_beats_popularity",
        passed=a > b,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"item2vec_ndcg": a, "popularity_ndcg": b},
    )
    table = pd.DataFrame(res).T.reset_index(names="model")
    yield dg.Output(
        {
            "split": split.__dict__,
            "k": k,
            "metrics": res,
            "model_version": p.get("model_version"),
            "session_gap_seconds": config.session_gap_seconds,
        },
        metadata={**flat, "table": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f"))},
    )
