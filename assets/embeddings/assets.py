"""Embedding assets: the ALS model and its user and item vectors (and helpers every family uses)."""

from dataclasses import replace

import dagster as dg
import pandas as pd

from assets.common.tuned import adopted_fields, params_source
from assets.embeddings.als import AlsEngine, AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.registry import register_factor_model
from assets.embeddings.vectors import VectorMeta, vector_profile, vectors_to_table
from resources.mlflow_tracking import MlflowResource
from resources.spark import SparkResource
from resources.validation import GreatExpectationsResource, gate

ALS_MODEL_NAME = "recstack-als"


class AlsConfig(dg.Config):
    """Implicit ALS hyper-parameters (see :class:`assets.embeddings.als.AlsParams`)."""

    engine: AlsEngine = "spark"  # spark: local[*] or a cluster; implicit: fast single node; implicit-gpu: CUDA
    use_tuned: bool = True  # train with als_tuning's best parameters; False: the values below
    rank: int = 32
    reg: float = 0.05
    alpha: float = 10.0
    iterations: int = 12
    seed: int = 0

    def params(self, tuned: dict | None = None) -> AlsParams:
        """The parameters to train with: these fields, with ``als_tuning``'s searched ones when
        ``use_tuned`` and confirmation adopted them (``tuned`` is the tuning asset's output)."""
        p = AlsParams(rank=self.rank, reg=self.reg, alpha=self.alpha, iterations=self.iterations, seed=self.seed)
        return replace(p, **adopted_fields(tuned)) if self.use_tuned else p


def data_version(df: pd.DataFrame) -> str:
    """A content hash of a frame, recorded as the model's data version."""
    return format(int(pd.util.hash_pandas_object(df, index=False).sum()) & 0xFFFFFFFFFFFF, "012x")


@dg.asset(kinds={"spark", "mlflow"})
def als_model(
    context: dg.AssetExecutionContext, config: AlsConfig, interactions: pd.DataFrame, als_tuning: dict,
    spark: SparkResource, mlflow_tracking: MlflowResource,
) -> dg.Output[FactorModel]:
    """Implicit ALS (Spark MLlib, or the single-node ``implicit`` engine by config) with the tuned
    parameters, logged to MLflow and registered as ``challenger``."""
    params = config.params(als_tuning)
    source = params_source("als_tuning", config.use_tuned, als_tuning)
    model = train_als(config.engine, interactions, params, spark=spark.get_session() if config.engine == "spark" else None)
    dv = data_version(interactions)
    reg = register_factor_model(context, mlflow_tracking, model, ALS_MODEL_NAME, dv)
    return dg.Output(
        model,
        metadata={
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(reg.run_id)),
            "model_version": reg.version, "users": len(model.user_ids), "items": len(model.item_ids),
            "rank": params.rank, "reg": params.reg, "alpha": params.alpha, "iterations": params.iterations, "params_from": source,
            "engine": config.engine, "train_seconds": model.params["train_seconds"], "data_version": dv,
        },
    )


def vector_outputs(ids, vecs, model: FactorModel, kind: str, check: str, gx: GreatExpectationsResource):
    """Yield the vectors' blocking check (suite ``vectors``) and, if it passed, the contract table."""
    meta = VectorMeta(metric="ip", normalized=True, model_name=model.params.get("model_name", ""),
                      model_version=str(model.params.get("model_version", "")), extra={"entity": kind})
    table = vectors_to_table(ids, vecs, meta)
    yield from gate(gx.validate(vector_profile(table), "vectors"), check)
    yield dg.Output(table, metadata={"rows": table.num_rows, "dim": int(vecs.shape[1]),
                                     "model_version": meta.model_version, "metric": "ip (unit vectors)"})


def vectors_check(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(f"{asset}_suite", asset=asset, blocking=True,
                              description="expectations/vectors.json: unique ids, one dimension, finite, unit norm")]


class VectorsConfig(dg.Config):
    """``from_alias``: build from the registered version behind this alias (``champion``, when the
    champion sensor rebuilds after an alias move) instead of the latest ``als_model``."""

    from_alias: str = ""


def _source(model: FactorModel, config: VectorsConfig, mlflow_tracking: MlflowResource) -> FactorModel:
    if not config.from_alias:
        return model
    from assets.embeddings.registry import load_registered_factor_model

    return load_registered_factor_model(mlflow_tracking, ALS_MODEL_NAME, config.from_alias)


@dg.asset(kinds={"arrow"}, check_specs=vectors_check("als_user_vectors"))
def als_user_vectors(config: VectorsConfig, als_model: FactorModel, gx: GreatExpectationsResource, mlflow_tracking: MlflowResource):
    """User factors as unit vectors (id, vector) carrying the ALS model version."""
    m = _source(als_model, config, mlflow_tracking)
    yield from vector_outputs(m.user_ids, m.user_factors, m, "user", "als_user_vectors_suite", gx)


@dg.asset(kinds={"arrow"}, check_specs=vectors_check("als_item_vectors"))
def als_item_vectors(config: VectorsConfig, als_model: FactorModel, gx: GreatExpectationsResource, mlflow_tracking: MlflowResource):
    """Item factors as unit vectors (id, vector) carrying the ALS model version."""
    m = _source(als_model, config, mlflow_tracking)
    yield from vector_outputs(m.item_ids, m.item_factors, m, "item", "als_item_vectors_suite", gx)
