"""The recommendation slice at test size, materialized once per test session into its own home.

Shared by the end-to-end test (which checks every output) and the UI tests (which browse what
it left in the Dagster instance and the MLflow registry).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

TINY = {
    "ops": {
        "interactions": {"config": {"n_interactions": 4000, "n_communities": 4}},
        "als_model": {"config": {"rank": 8, "iterations": 5}},
        "faiss_index_als_users": {"config": {"recall_sample": 100}},
        "faiss_index_als_items": {"config": {"recall_sample": 100}},
        "faiss_index_item2vec_items": {"config": {"recall_sample": 100}},
        "item2vec_model": {"config": {"dim": 16, "epochs": 5}},
        "entity_profiles": {"config": {"n_entities": 400}},
        "two_tower_model": {"config": {"max_epochs": 2, "dim": 32, "out_dim": 32}},
        "entity_vectors": {"config": {"epochs": 60}},
        "faiss_index_entities": {"config": {"recall_sample": 100}},
        "lookalike_audiences": {"config": {"audience_size": 50}},
        "als_tuning": {"config": {"n_trials": 3, "timeout_seconds": 30}},
        "item2vec_tuning": {"config": {"n_trials": 3, "timeout_seconds": 30, "dim": 16, "epochs": 5}},
        "two_tower_tuning": {"config": {"n_trials": 2, "timeout_seconds": 30, "dim": 32, "out_dim": 32}},
    }
}


@dataclass
class SliceRun:
    """Where a materialized slice lives and what the run returned."""

    home: Path
    result: dg.ExecuteInProcessResult

    @property
    def env(self) -> dict[str, str]:
        """The environment that points RecStack and Dagster at this home."""
        return {"RECSTACK_HOME": str(self.home), "DAGSTER_HOME": str(self.home / "dagster")}

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"


def materialize_slice(home: Path, spark_resource) -> SliceRun:
    """Run ``recommendation_slice`` at :data:`TINY` size with ``home`` as RECSTACK_HOME/DAGSTER_HOME."""
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"RECSTACK_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}.items():
            mp.setenv(k, v)
        from orchestration.definitions import build_definitions

        job = build_definitions("local").resolve_job_def("recommendation_slice")
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(instance=instance, run_config=TINY, resources={"spark": spark_resource})
    return SliceRun(home, result)
