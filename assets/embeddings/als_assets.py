"""ALS assets: the model (Spark or the single-node engine), registered, and its user and item vectors."""

import dagster as dg

from assets.common._shared import TunedParamsConfig, params_config
from assets.common.tuned import params_source
from assets.embeddings._shared import vector_outputs, vectors_check
from assets.embeddings.als import AlsEngine, AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.registry import register_factor_model
from recstack import names
from resources.mlflow_tracking import MlflowResource
from resources.monitoring import MonitoringResource
from resources.spark import SparkResource
from resources.storage import ParquetDataset
from resources.validation import GreatExpectationsResource

AlsConfig = params_config(
    AlsParams,
    "AlsConfig",
    "Implicit ALS: :class:`~assets.embeddings.als.AlsParams`, the engine, and whether "
    "``als_tuning``'s adopted parameters replace these.",
    base=TunedParamsConfig,
    extra={
        "engine": (
            AlsEngine,
            "spark",
            "spark: local[*] or a cluster; implicit: fast single node; implicit-gpu: CUDA",
        ),
        "use_tuned": (bool, True, "train with als_tuning's adopted parameters; False: the values here"),
    },
)


@dg.asset(kinds={"spark", "mlflow"})
def als_model(
    context: dg.AssetExecutionContext,
    config: AlsConfig,
    interactions: ParquetDataset,
    als_tuning: dict,
    spark: SparkResource,
    mlflow_tracking: MlflowResource,
) -> dg.Output[FactorModel]:
    """Implicit ALS (Spark MLlib, or the single-node ``implicit`` engine by config) with the tuned
    parameters, logged to MLflow and registered as ``challenger``. The interactions come by
    reference: Spark reads their Parquet itself, so they never pass through this process."""
    params = config.params(als_tuning)
    source = params_source("als_tuning", config.use_tuned, als_tuning)
    on_spark = config.engine == "spark"
    context.log.info(
        "training on %s (%d rows) with the %s engine", interactions.uri, interactions.rows, config.engine
    )
    model = train_als(
        config.engine,
        interactions.uri if on_spark else interactions.to_pandas(),
        params,
        spark=spark.get_session() if on_spark else None,
        scratch_dir=spark.scratch_dir,
    )
    dv = interactions.content_hash()
    reg = register_factor_model(context, mlflow_tracking, model, names.ALS_MODEL, dv)
    return dg.Output(
        model,
        metadata={
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(reg.run_id)),
            "model_version": reg.version,
            "users": len(model.user_ids),
            "items": len(model.item_ids),
            "rank": params.rank,
            "reg": params.reg,
            "alpha": params.alpha,
            "iterations": params.iterations,
            "params_from": source,
            "engine": config.engine,
            "train_seconds": model.params["train_seconds"],
            "data_version": dv,
        },
    )


class VectorsConfig(dg.Config):
    """``from_alias``: build from the registered version behind this alias (``champion``, when the
    champion sensor rebuilds after an alias move) instead of the latest ``als_model``."""

    from_alias: str = ""


def _source(model: FactorModel, config: VectorsConfig, mlflow_tracking: MlflowResource) -> FactorModel:
    if not config.from_alias:
        return model
    from assets.embeddings.registry import load_registered_factor_model

    return load_registered_factor_model(mlflow_tracking, names.ALS_MODEL, config.from_alias)


@dg.asset(kinds={"arrow"}, check_specs=vectors_check("als_user_vectors"))
def als_user_vectors(
    context: dg.AssetExecutionContext,
    config: VectorsConfig,
    als_model: FactorModel,
    gx: GreatExpectationsResource,
    mlflow_tracking: MlflowResource,
    monitoring: MonitoringResource,
):
    """User factors as unit vectors (id, vector) carrying the ALS model version."""
    m = _source(als_model, config, mlflow_tracking)
    yield from vector_outputs(
        context, m.user_ids, m.user_factors, m, "user", "als_user_vectors", gx, monitoring
    )


@dg.asset(kinds={"arrow"}, check_specs=vectors_check("als_item_vectors"))
def als_item_vectors(
    context: dg.AssetExecutionContext,
    config: VectorsConfig,
    als_model: FactorModel,
    gx: GreatExpectationsResource,
    mlflow_tracking: MlflowResource,
    monitoring: MonitoringResource,
):
    """Item factors as unit vectors (id, vector) carrying the ALS model version."""
    m = _source(als_model, config, mlflow_tracking)
    yield from vector_outputs(
        context, m.item_ids, m.item_factors, m, "item", "als_item_vectors", gx, monitoring
    )
