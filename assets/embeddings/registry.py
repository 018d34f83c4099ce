"""Registering factor models (ALS, item2vec) through the one MLflow path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from assets.embeddings.factor_model import FactorModel
from resources.mlflow_tracking import MlflowResource, RegisteredModel, dagster_tags

FACTOR_PYFUNC = str(Path(__file__).with_name("factor_pyfunc.py"))


def register_factor_model(
    context, mlflow_tracking: MlflowResource, model: FactorModel, model_name: str, data_version: str
) -> RegisteredModel:
    """Log ``model`` (params, training time, pyfunc) as a new ``challenger`` version of ``model_name``
    and record run id, name and version in ``model.params``."""
    reg = mlflow_tracking.log_and_register(
        model_name,
        FACTOR_PYFUNC,
        {"factors": model.save},
        run_name=context.asset_key.to_user_string(),
        tags={**dagster_tags(context), "data_version": data_version},
        params={**model.params, "n_users": len(model.user_ids), "n_items": len(model.item_ids)},
        metrics={"train_seconds": model.params["train_seconds"]},
        # (input, params): the signature then declares `k`, or MLflow drops it at predict time.
        input_example=(pd.DataFrame({"user_id": model.user_ids[:2]}), {"k": 10}),
    )
    model.params.update(
        mlflow_run_id=reg.run_id, model_name=model_name, model_version=reg.version, data_version=data_version
    )
    context.log.info("registered %s version %s as %s", model_name, reg.version, reg.alias)
    return reg


def load_registered_factor_model(mlflow_tracking: MlflowResource, model_name: str, alias: str) -> FactorModel:
    """The factor model behind ``model_name@alias`` in the registry (arrays from ``.npz``, no pickle),
    with its name and version in ``params``."""
    version = mlflow_tracking.alias_version(model_name, alias)
    if version is None:
        raise LookupError(f"{model_name} has no {alias!r} alias")
    model = FactorModel.load(mlflow_tracking.download_version(model_name, version) / "artifacts" / "factors")
    model.params.update(model_name=model_name, model_version=version, alias=alias)
    return model
