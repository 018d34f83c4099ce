"""Offline evaluation of ALS and item2vec against a popularity baseline on a held-out split."""

from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd

from assets.common.topk import interaction_mask
from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.evaluation.offline import (
    SplitSpec,
    evaluate_recommendations,
    recommend_from_factors,
    recommend_popular,
    split_interactions,
)
from resources.mlflow_tracking import MlflowResource
from resources.spark import SparkResource


class SplitConfig(dg.Config):
    """The held-out split of a family's evaluation; its tuning carves validation by the same rule."""

    split: Literal["last_n", "random"] = "last_n"
    holdout_n: int = 1
    test_fraction: float = 0.2
    split_seed: int = 7

    def split_spec(self) -> SplitSpec:
        return SplitSpec(method=self.split, n=self.holdout_n, test_fraction=self.test_fraction, seed=self.split_seed)


class EvaluationConfig(SplitConfig):
    k: int = 10
    session_gap_seconds: int = 259_200  # item2vec refits: keep equal to click_sequences' gap_seconds


def evaluate_als_vs_popularity(train: pd.DataFrame, test: pd.DataFrame, model: FactorModel, k: int) -> dict[str, dict[str, float]]:
    """Metrics of a factor model trained on ``train`` and of the popularity baseline."""
    users, items = pd.Index(model.user_ids), pd.Index(model.item_ids)
    seen = interaction_mask(train, users, items)
    rec_model = recommend_from_factors(model.user_factors, model.item_factors, k, exclude=seen)
    rec_pop = recommend_popular(train, len(users), items, k, exclude=seen)
    return {"als": evaluate_recommendations(rec_model, test, users, items, k),
            "popularity": evaluate_recommendations(rec_pop, test, users, items, k)}


@dg.asset(
    kinds={"spark", "mlflow"},
    check_specs=[dg.AssetCheckSpec("als_beats_popularity", asset="als_evaluation",
                                   description="ALS NDCG@k on the held-out split exceeds the popularity baseline's")],
)
def als_evaluation(
    context: dg.AssetExecutionContext, config: EvaluationConfig, interactions: pd.DataFrame, als_model: FactorModel,
    spark: SparkResource, mlflow_tracking: MlflowResource,
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
    yield dg.AssetCheckResult(check_name="als_beats_popularity", passed=a > b, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"als_ndcg": a, "popularity_ndcg": b, "lift": round(a / b, 3) if b else None})
    table = pd.DataFrame(res).T.reset_index(names="model")
    yield dg.Output(
        {"split": split.__dict__, "k": k, "metrics": res, "model_version": p.get("model_version")},
        metadata={**flat, "train_rows": len(train), "test_rows": len(test), "model_version": str(p.get("model_version", "")),
                  "ndcg_lift_vs_popularity": round(a / b, 3) if b else 0.0,
                  "table": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f")),
                  **({"mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(run_id))} if run_id else {})},
    )


def evaluate_models_same_users(train: pd.DataFrame, test: pd.DataFrame, models: dict[str, FactorModel], k: int) -> dict:
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
        out[name] = evaluate_recommendations(recommend_from_factors(m.user_factors[rows], m.item_factors, k, exclude=seen),
                                             test, users, items, k)
    items = pd.Index(np.unique(train["item_id"]))
    seen = interaction_mask(train[train["user_id"].isin(users)], users, items)
    out["popularity"] = evaluate_recommendations(recommend_popular(train, len(users), items, k, seen), test, users, items, k)
    return out


@dg.asset(kinds={"gensim", "mlflow"},
          check_specs=[dg.AssetCheckSpec("item2vec_beats_popularity", asset="item2vec_evaluation",
                                         description="item2vec NDCG@k on the held-out split exceeds popularity's")])
def item2vec_evaluation(context: dg.AssetExecutionContext, config: EvaluationConfig, interactions: pd.DataFrame,
                        item2vec_model: FactorModel, mlflow_tracking: MlflowResource):
    """Refit item2vec (same parameters) on a train split; score it, implicit ALS and popularity on
    the same held-out interactions and users."""
    from assets.embeddings.item2vec import Item2VecParams, fit_item2vec, sessionize

    split = config.split_spec()
    train, test = split_interactions(interactions, split)
    p = item2vec_model.params
    params = Item2VecParams(**{k: p[k] for k in Item2VecParams.__dataclass_fields__})
    sessions = sessionize(train, config.session_gap_seconds)
    res = evaluate_models_same_users(train, test, {"item2vec": fit_item2vec(sessions, train, params),
                                                   "als": train_als("implicit", train, AlsParams())}, config.k)
    k = config.k
    flat = {f"{m}_{name}": round(v, 5) for m, d in res.items() for name, v in d.items()}
    if p.get("mlflow_run_id"):
        mlflow_tracking.log_metrics(p["mlflow_run_id"], flat, prefix="eval_")
    a, b = res["item2vec"][f"ndcg@{k}"], res["popularity"][f"ndcg@{k}"]
    yield dg.AssetCheckResult(check_name="item2vec_beats_popularity", passed=a > b, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"item2vec_ndcg": a, "popularity_ndcg": b})
    table = pd.DataFrame(res).T.reset_index(names="model")
    yield dg.Output({"split": split.__dict__, "k": k, "metrics": res, "model_version": p.get("model_version"),
                     "session_gap_seconds": config.session_gap_seconds},
                    metadata={**flat, "table": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f"))})
