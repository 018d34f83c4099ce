"""Logging a trained model to MLflow and registering it as the ``challenger``."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from assets.embeddings.factor_model import FactorModel

PYFUNC_CODE = str(Path(__file__).with_name("factor_pyfunc.py"))
# Explicit requirements: inference would pin torch without +cpu and pull CUDA wheels.
PYFUNC_REQUIREMENTS = ["mlflow==3.17.2", "numpy==2.4.6", "pandas==2.3.3"]


def log_factor_model(model: FactorModel, registered_name: str) -> tuple[str, str]:
    """Log ``model`` as a pyfunc in the active run and register it.

    Returns ``(model_uri, version)``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "factors")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=PYFUNC_CODE,
            artifacts={"factors": str(Path(tmp) / "factors")},
            pip_requirements=PYFUNC_REQUIREMENTS,
            # (input, params): the signature then declares `k`, or MLflow drops it at predict time.
            input_example=(pd.DataFrame({"user_id": model.user_ids[:2]}), {"k": 10}),
            registered_model_name=registered_name,
        )
    return info.model_uri, str(info.registered_model_version)


def track_and_register(context, mlflow_tracking, model: FactorModel, registered_name: str, asset: str, data_version: str):
    """Log ``model``'s params and training time in a new run, register it as ``challenger`` and
    record run id, name and version in ``model.params``. Returns the MLflow run id."""
    tags = {"dagster_run_id": context.run_id, "dagster_asset": asset, "data_version": data_version}
    with mlflow_tracking.start_run(asset, tags=tags) as run:
        mlflow.log_params({**model.params, "n_users": len(model.user_ids), "n_items": len(model.item_ids)})
        mlflow.log_metric("train_seconds", model.params["train_seconds"])
        _, version = log_factor_model(model, registered_name)
    mlflow_tracking.set_alias(registered_name, "challenger", version)
    model.params.update(mlflow_run_id=run.info.run_id, model_name=registered_name, model_version=version, data_version=data_version)
    context.log.info("registered %s version %s as challenger", registered_name, version)
    return run.info.run_id
