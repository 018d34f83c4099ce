"""item2vec assets: click sequences → skip-gram model → item and user vectors, evaluated."""

import dagster as dg
import pandas as pd

from assets.common._shared import TunedParamsConfig, params_config
from assets.common.tuned import params_source
from assets.embeddings._shared import data_version, vector_outputs, vectors_check
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.item2vec import Item2VecParams, SessionSpec, fit_item2vec, sessionize
from assets.embeddings.registry import register_factor_model
from recstack import names
from resources.mlflow_tracking import MlflowResource
from resources.monitoring import MonitoringResource
from resources.validation import GreatExpectationsResource

SessionConfig = params_config(
    SessionSpec,
    "SessionConfig",
    "How interactions are cut into click sessions (:class:`~assets.embeddings.item2vec.SessionSpec`).",
)


@dg.asset(kinds={"pandas"})
def click_sequences(config: SessionConfig, interactions: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Per-user, time-ordered sessions (``user_id``, ``session``, ``items``)."""
    s = sessionize(interactions, config.gap_seconds, config.min_len)
    lengths = s["items"].map(len)
    return dg.Output(
        s,
        metadata={
            "rows": len(s),
            "users": int(s["user_id"].nunique()),
            "mean_length": round(float(lengths.mean()), 2) if len(s) else 0.0,
            "tokens": int(lengths.sum()),
        },
    )


Item2VecConfig = params_config(
    Item2VecParams,
    "Item2VecConfig",
    "Skip-gram and user-vector parameters (:class:`~assets.embeddings.item2vec.Item2VecParams`).",
    base=TunedParamsConfig,
    extra={
        "use_tuned": (
            bool,
            True,
            "window, negative, min_count, half-life from item2vec_tuning when it adopted them",
        )
    },
)


@dg.asset(kinds={"gensim", "mlflow"})
def item2vec_model(
    context: dg.AssetExecutionContext,
    config: Item2VecConfig,
    click_sequences: pd.DataFrame,
    interactions: pd.DataFrame,
    item2vec_tuning: dict,
    mlflow_tracking: MlflowResource,
) -> dg.Output[FactorModel]:
    """Skip-gram item vectors (gensim) over ``click_sequences`` and user vectors from them, with
    ``item2vec_tuning``'s best window, negative, min_count and half-life; registered as ``challenger``."""
    if click_sequences.empty:
        raise dg.Failure(
            "click_sequences is empty: no session reached min_len (lower it, or raise gap_seconds)"
        )
    sessions = click_sequences
    params = config.params(item2vec_tuning)
    model = fit_item2vec(sessions, interactions, params)
    reg = register_factor_model(
        context, mlflow_tracking, model, names.ITEM2VEC_MODEL, data_version(interactions)
    )
    return dg.Output(
        model,
        metadata={
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(reg.run_id)),
            "model_version": reg.version,
            "items": len(model.item_ids),
            "users": len(model.user_ids),
            "sessions": len(sessions),
            "train_seconds": model.params["train_seconds"],
            "window": params.window,
            "negative": params.negative,
            "min_count": params.min_count,
            "recency_half_life_days": round(params.recency_half_life_days, 4),
            "params_from": params_source("item2vec_tuning", config.use_tuned, item2vec_tuning),
        },
    )


@dg.asset(kinds={"arrow"}, check_specs=vectors_check("item2vec_item_vectors"))
def item2vec_item_vectors(
    context: dg.AssetExecutionContext,
    item2vec_model: FactorModel,
    gx: GreatExpectationsResource,
    monitoring: MonitoringResource,
):
    """Item vectors (unit) with the item2vec model version."""
    yield from vector_outputs(
        context,
        item2vec_model.item_ids,
        item2vec_model.item_factors,
        item2vec_model,
        "item",
        "item2vec_item_vectors",
        gx,
        monitoring,
    )


@dg.asset(kinds={"arrow"}, check_specs=vectors_check("item2vec_user_vectors"))
def item2vec_user_vectors(
    context: dg.AssetExecutionContext,
    item2vec_model: FactorModel,
    gx: GreatExpectationsResource,
    monitoring: MonitoringResource,
):
    """User vectors: the recency-weighted mean of their items' vectors (config ``user_vector``)."""
    yield from vector_outputs(
        context,
        item2vec_model.user_ids,
        item2vec_model.user_factors,
        item2vec_model,
        "user",
        "item2vec_user_vectors",
        gx,
        monitoring,
    )
