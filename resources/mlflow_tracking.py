"""MLflow tracking and registry: SQLite + local artifacts locally, an MLflow server in prod.

Named ``mlflow_tracking`` so it never shadows the ``mlflow`` package.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


class MlflowResource(ConfigurableResource):
    """Where runs and registered models go.

    ``artifact_root`` is used when this resource creates the experiment (MLflow otherwise drops
    artifacts into ``./mlruns``); ``ui_url`` is used only to build links for the Dagster UI.
    """

    tracking_uri: str
    artifact_root: str = ""
    experiment: str = "recstack"
    ui_url: str = "http://127.0.0.1:5000"

    def _client(self):
        import mlflow
        from mlflow import MlflowClient

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow, MlflowClient(self.tracking_uri)

    def experiment_id(self) -> str:
        mlflow, client = self._client()
        exp = client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        loc = None
        if self.artifact_root:
            loc = self.artifact_root if "://" in self.artifact_root else Path(self.artifact_root).absolute().as_uri()
        return client.create_experiment(self.experiment, artifact_location=loc)

    @contextmanager
    def start_run(self, run_name: str, tags: dict[str, str] | None = None):
        """Start (and always end) an MLflow run in this resource's experiment."""
        mlflow, _ = self._client()
        exp_id = self.experiment_id()
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags or {}) as run:
            yield run

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{self.experiment_id()}/runs/{run_id}"

    def log_metrics(self, run_id: str, metrics: dict[str, float], prefix: str = "") -> None:
        """Log metrics into an existing run (e.g. evaluation results into the training run)."""
        _, client = self._client()
        for name, v in metrics.items():
            client.log_metric(run_id, prefix + name.replace("@", "_at_"), float(v))

    def set_alias(self, model_name: str, alias: str, version: str | int) -> None:
        _, client = self._client()
        client.set_registered_model_alias(model_name, alias, str(version))

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """The version behind ``alias``, or None if the model or alias does not exist."""
        from mlflow.exceptions import MlflowException

        _, client = self._client()
        try:
            return client.get_model_version_by_alias(model_name, alias).version
        except MlflowException:
            return None
