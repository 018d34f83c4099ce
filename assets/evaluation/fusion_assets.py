"""The fusion of ALS and item2vec: chosen on validation, then measured against each source alone."""

from dataclasses import asdict

import dagster as dg
import pandas as pd

from assets.common._shared import params_config, params_of
from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.item2vec import Item2VecParams, SessionSpec, fit_item2vec, sessionize
from assets.evaluation.fusion import choose_fusion, compare_methods, time_split
from assets.retrieval.recommend import SOURCES, FusionParams
from recstack import names
from resources.mlflow_tracking import MlflowResource


class _FusionMethods(dg.Config):
    def fusion_params(self) -> FusionParams:
        """The :class:`~assets.retrieval.recommend.FusionParams` these fields describe."""
        return params_of(self, FusionParams)


FusionConfig = params_config(
    FusionParams,
    "FusionConfig",
    "The default fusion (kept unless validation confirms another) and the time splits that choose "
    "and measure it (:class:`~assets.retrieval.recommend.FusionParams`).",
    base=_FusionMethods,
    extra={
        "k": (int, 10, "List length scored."),
        "test_fraction": (float, 0.1, "The latest share of the interactions held out as the test split."),
        "validation_fraction": (
            float,
            0.1,
            "The latest share of the training interactions on which the fusion is chosen.",
        ),
        "session_gap_seconds": (int, SessionSpec.gap_seconds, "item2vec's session gap (click_sequences')."),
    },
)


def _served_params(mlflow_tracking: MlflowResource, model_name: str, current: dict) -> tuple[str, dict]:
    """``(version, run params)`` of the champion, or of the current version where there is none."""
    version = mlflow_tracking.alias_version(model_name, names.CHAMPION)
    if version is None:
        return str(current.get("model_version", "")), current
    return str(version), mlflow_tracking.version_params(model_name, version)


@dg.asset(
    kinds={"pandas"},
    deps=[names.ALS_PROMOTION, names.ITEM2VEC_PROMOTION],
    check_specs=[
        dg.AssetCheckSpec(
            "fused_beats_best_single",
            asset=names.RECOMMENDATION_FUSION,
            description="The fused lists beat the better of ALS and item2vec alone on NDCG@k and recall@k "
            "over every test user of the time split (cold users included)",
        )
    ],
)
def recommendation_fusion(
    context: dg.AssetExecutionContext,
    config: FusionConfig,
    interactions: pd.DataFrame,
    als_model: FactorModel,
    item2vec_model: FactorModel,
    mlflow_tracking: MlflowResource,
):
    """How ``user_recommendations`` fuses the ALS and item2vec champions, decided on validation
    carved from the training part of a time split, and the test split's verdict: fused against each
    source alone and popularity, over every test user, cold ones included.

    Both sources are refit with the champions' registered parameters (ALS on the single-node
    ``implicit`` engine, the same algorithm as the served one's)."""
    k = config.k
    als_v, als_p = _served_params(mlflow_tracking, names.ALS_MODEL, als_model.params)
    i2v_v, i2v_p = _served_params(mlflow_tracking, names.ITEM2VEC_MODEL, item2vec_model.params)
    als_params, i2v_params = AlsParams.from_dict(als_p), Item2VecParams.from_dict(i2v_p)

    def fit_sources(df: pd.DataFrame) -> dict:
        return {
            "als": train_als("implicit", df, als_params),
            "item2vec": fit_item2vec(sessionize(df, config.session_gap_seconds), df, i2v_params),
        }

    train, test = time_split(interactions, config.test_fraction)
    chosen, trials = choose_fusion(train, fit_sources, k, config.validation_fraction, config.fusion_params())
    context.log.info("fusion chosen on validation: %s", asdict(chosen))
    metrics = compare_methods(train, test, fit_sources(train), chosen, k)
    best = max(SOURCES, key=lambda s: metrics[s][f"ndcg@{k}"])
    f, b = metrics["fused"], metrics[best]
    passed = f[f"ndcg@{k}"] > b[f"ndcg@{k}"] and f[f"recall@{k}"] > b[f"recall@{k}"]
    if not passed:
        context.log.warning(
            "fused lists do not beat %s alone on the test split (NDCG@%d %.4f vs %.4f, recall %.4f vs %.4f)",
            best,
            k,
            f[f"ndcg@{k}"],
            b[f"ndcg@{k}"],
            f[f"recall@{k}"],
            b[f"recall@{k}"],
        )
    yield dg.AssetCheckResult(
        check_name="fused_beats_best_single",
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"best_single": best, "fused_ndcg": f[f"ndcg@{k}"], "best_single_ndcg": b[f"ndcg@{k}"]},
    )
    table = pd.DataFrame(metrics).T.reset_index(names="method")
    yield dg.Output(
        {
            "fusion": asdict(chosen),
            "k": k,
            "metrics": metrics,
            "best_single": best,
            "trials": trials,
            "sources": {"als": als_v, "item2vec": i2v_v},
            "split": {"method": "time", "test_fraction": config.test_fraction},
        },
        metadata={
            "method": chosen.method,
            "als_weight": chosen.als_weight,
            "fused_ndcg": f[f"ndcg@{k}"],
            "best_single": best,
            "best_single_ndcg": b[f"ndcg@{k}"],
            "test_users": f["n_users"],
            "cold_test_users": f["cold_users"],
            "table": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f")),
            "validation_trials": dg.MetadataValue.md(pd.DataFrame(trials).to_markdown(index=False)),
        },
    )
