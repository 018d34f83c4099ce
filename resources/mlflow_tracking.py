"""MLflow tracking and registry: SQLite + local artifacts locally, an MLflow server in prod.

Named ``mlflow_tracking`` so it never shadows the ``mlflow`` package.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from recstack import names

# Every logged model's pip requirements come from here: the versions installed in this
# environment, which constraints.txt pins. Explicit, because MLflow's inference pins torch
# without "+cpu" (pulling CUDA wheels) and takes ~100x longer.
BASE_REQUIREMENTS = ("mlflow", "numpy", "pandas")


def model_requirements(*packages: str) -> list[str]:
    """``name==version`` for MLflow, numpy, pandas and ``packages``, as installed here (local
    version labels such as ``+cpu`` dropped: the registry has no such version)."""
    names = dict.fromkeys([*BASE_REQUIREMENTS, *packages])
    return [f"{n}=={installed_version(n).split('+')[0]}" for n in names]


@dataclass(frozen=True)
class RegisteredModel:
    """A logged, registered model version and the run that produced it."""

    name: str
    version: str
    run_id: str
    model_uri: str
    alias: str


def dagster_tags(context) -> dict[str, str]:
    """MLflow run tags tying a run to the Dagster run, asset and partition that made it."""
    tags = {"dagster_run_id": context.run_id}
    try:
        tags["dagster_asset"] = context.asset_key.to_user_string()
    except Exception:  # noqa: BLE001 - op contexts and multi-assets have no single asset key
        pass
    if getattr(context, "has_partition_key", False):
        tags["dagster_partition"] = context.partition_key
    return tags


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
            loc = (
                self.artifact_root
                if "://" in self.artifact_root
                else Path(self.artifact_root).absolute().as_uri()
            )
        return client.create_experiment(self.experiment, artifact_location=loc)

    @contextmanager
    def start_run(self, run_name: str, tags: dict[str, str] | None = None):
        """Start (and always end) an MLflow run in this resource's experiment."""
        mlflow, _ = self._client()
        exp_id = self.experiment_id()
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags or {}) as run:
            yield run

    def log_and_register(
        self,
        model_name: str,
        python_model: str,
        artifacts: dict[str, Callable[[Path], None]],
        *,
        run_name: str,
        tags: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        step_metrics: dict[str, list[float]] | None = None,
        dicts: dict[str, dict] | None = None,
        requirements: tuple[str, ...] = (),
        input_example: Any = None,
        alias: str = names.CHALLENGER,
    ) -> RegisteredModel:
        """The one path to the registry: track a run, log a pyfunc, register it, set ``alias``.

        Parameters
        ----------
        model_name : str
            Registered model name (a new version is created).
        python_model : str
            Path of a models-from-code pyfunc file (nothing is unpickled on load).
        artifacts : dict
            Artifact name -> function writing that artifact's folder (e.g. ``model.save``).
        run_name, tags, params, metrics, dicts :
            What the run records; ``step_metrics`` are per-step series (e.g. per-epoch loss).
        requirements : tuple of str
            Packages the model needs beyond MLflow, numpy and pandas (see :func:`model_requirements`).
        input_example :
            Passed to MLflow (an ``(input, params)`` tuple declares predict params in the signature).
        alias : str
            The alias the new version gets (``challenger``; promotion moves ``champion``).
        """
        mlflow, _ = self._client()
        with self.start_run(run_name, tags=tags) as run, tempfile.TemporaryDirectory() as tmp:
            if params:
                mlflow.log_params(
                    {
                        k: (str(v)[:500] if not isinstance(v, (int, float, bool)) else v)
                        for k, v in params.items()
                    }
                )
            if metrics:
                mlflow.log_metrics({k.replace("@", "_at_"): float(v) for k, v in metrics.items()})
            for name, series in (step_metrics or {}).items():
                for step, v in enumerate(series):
                    mlflow.log_metric(name.replace("@", "_at_"), float(v), step=step)
            for name, d in (dicts or {}).items():
                mlflow.log_dict(d, name)
            paths = {}
            for name, write in artifacts.items():
                paths[name] = str(Path(tmp) / name)
                write(Path(paths[name]))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                artifacts=paths,
                pip_requirements=model_requirements(*requirements),
                input_example=input_example,
                registered_model_name=model_name,
            )
        version = str(info.registered_model_version)
        self.set_alias(model_name, alias, version)
        return RegisteredModel(model_name, version, run.info.run_id, info.model_uri, alias)

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{self.experiment_id()}/runs/{run_id}"

    def log_metrics(self, run_id: str, metrics: dict[str, float], prefix: str = "") -> None:
        """Log metrics into an existing run (e.g. evaluation results into the training run)."""
        _, client = self._client()
        for name, v in metrics.items():
            client.log_metric(run_id, prefix + name.replace("@", "_at_"), float(v))

    def log_dict(self, run_id: str, obj: dict | list, artifact_file: str) -> None:
        """Log ``obj`` as a JSON artifact of an existing run (e.g. a validation curve)."""
        _, client = self._client()
        client.log_dict(run_id, obj, artifact_file)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str) -> None:
        """Log a folder's files as artifacts of an existing run (e.g. a second-stage encoder)."""
        _, client = self._client()
        client.log_artifacts(run_id, local_dir, artifact_path)

    def set_alias(self, model_name: str, alias: str, version: str | int) -> None:
        _, client = self._client()
        client.set_registered_model_alias(model_name, alias, str(version))

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """The version behind ``alias``, or None if the model or alias does not exist."""
        from mlflow.exceptions import MlflowException

        _, client = self._client()
        try:
            return str(client.get_model_version_by_alias(model_name, alias).version)
        except MlflowException:
            return None

    def version_tags(self, model_name: str, version: str | int, tags: dict[str, str]) -> None:
        _, client = self._client()
        for k, v in tags.items():
            client.set_model_version_tag(model_name, str(version), k, str(v))

    def move_champion(
        self, model_name: str, version: str | int, reason: str, by: str = "policy"
    ) -> str | None:
        """Point ``champion`` at ``version`` (the old champion becomes ``previous_champion``) and tag
        the version with why. Returns the previous champion's version."""
        import datetime as _dt

        previous = self.alias_version(model_name, names.CHAMPION)
        self.set_alias(model_name, names.CHAMPION, version)
        if previous and previous != str(version):
            self.set_alias(model_name, names.PREVIOUS_CHAMPION, previous)
        self.version_tags(
            model_name,
            version,
            {
                names.TAG_PROMOTION: names.CHAMPION,
                names.TAG_PROMOTION_REASON: reason,
                names.TAG_PROMOTION_BY: by,
                names.TAG_PROMOTION_AT: _dt.datetime.now(_dt.UTC).isoformat(),
            },
        )
        return previous

    def versions(self, model_name: str) -> list[dict]:
        """Every version of ``model_name``, newest first: ``version``, ``aliases`` (sorted), ``tags``,
        ``run_id``. Empty when the model is not registered."""
        _, client = self._client()
        out = []
        for v in sorted(
            client.search_model_versions(f"name='{model_name}'"), key=lambda v: int(v.version), reverse=True
        ):
            v = client.get_model_version(model_name, str(v.version))  # search results carry no aliases
            out.append(
                {
                    "version": str(v.version),
                    "aliases": sorted(v.aliases or []),
                    "tags": dict(v.tags),
                    "run_id": v.run_id,
                }
            )
        return out

    def version_params(self, model_name: str, version: str | int) -> dict[str, str]:
        """The parameters logged by the run that produced ``model_name`` version ``version``."""
        _, client = self._client()
        return dict(client.get_run(client.get_model_version(model_name, str(version)).run_id).data.params)

    def load_pyfunc(self, model_name: str, version: str | int):
        """``model_name`` version ``version`` as an MLflow pyfunc (models-from-code: nothing unpickled)."""
        mlflow, _ = self._client()
        return mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")

    def download_version(self, model_name: str, version: str | int) -> Path:
        """Download ``model_name`` version ``version``'s model folder; returns its local path."""
        mlflow, _ = self._client()
        return Path(mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}"))

    @contextmanager
    def child_run(self, parent, run_name: str, tags: dict[str, str] | None = None):
        """A run nested under ``parent`` (an active run from :meth:`start_run`), in its experiment
        (a nested run otherwise lands in the "Default" one)."""
        mlflow, _ = self._client()
        with mlflow.start_run(
            run_name=run_name, nested=True, experiment_id=parent.info.experiment_id, tags=tags or {}
        ) as run:
            yield run

    def log_params(self, params: dict[str, Any]) -> None:
        """Log ``params`` into the active run."""
        mlflow, _ = self._client()
        mlflow.log_params(params)

    def log_active_metrics(self, metrics: dict[str, float]) -> None:
        """Log ``metrics`` into the active run (``@`` spelled ``_at_``: MLflow refuses it)."""
        mlflow, _ = self._client()
        mlflow.log_metrics({k.replace("@", "_at_"): float(v) for k, v in metrics.items()})

    def rollback_champion(
        self, model_name: str, reason: str = "rollback", by: str = "manual"
    ) -> tuple[str, str]:
        """Swap ``champion`` and ``previous_champion``; returns ``(from_version, to_version)``."""
        current, previous = (
            self.alias_version(model_name, names.CHAMPION),
            self.alias_version(model_name, names.PREVIOUS_CHAMPION),
        )
        if previous is None or current is None:
            raise RuntimeError(f"{model_name}: no previous champion to roll back to")
        self.move_champion(model_name, previous, reason, by)
        self.set_alias(model_name, names.PREVIOUS_CHAMPION, current)
        return current, previous
