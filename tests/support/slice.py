"""The recommendation slice at test size, materialized once per test session into its own home.

Shared by the end-to-end test (which checks every output) and the UI tests (which browse what
it left in the Dagster instance and the MLflow registry).
"""

from __future__ import annotations

import io
import logging
import os
import sys
from contextlib import contextmanager
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
    log: str  # everything the run printed: Python streams, loggers and the process's fds 1 and 2

    @property
    def env(self) -> dict[str, str]:
        """The environment that points RecStack and Dagster at this home."""
        return {"RECSTACK_HOME": str(self.home), "DAGSTER_HOME": str(self.home / "dagster")}

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"


@contextmanager
def captured_output(path: Path):
    """Send everything this process prints to ``path``: ``sys.stdout``/``sys.stderr``, every
    logging handler that writes to a console stream (pymilvus and dagster bind theirs at import),
    and file descriptors 1 and 2 (gRPC's C core and other native code)."""
    consoles = {id(s) for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)}
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    handlers = [
        h
        for lg in loggers
        for h in lg.handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and id(h.stream) in consoles
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    with open(path, "w+b", buffering=0) as raw:
        saved_fds = [os.dup(1), os.dup(2)]
        text = io.TextIOWrapper(open(raw.fileno(), "wb", buffering=0, closefd=False), write_through=True)
        saved_streams = (sys.stdout, sys.stderr)
        saved_handler_streams = [h.stream for h in handlers]
        try:
            os.dup2(raw.fileno(), 1)
            os.dup2(raw.fileno(), 2)
            sys.stdout = sys.stderr = text
            for h in handlers:
                h.setStream(text)
            yield
        finally:
            text.flush()
            for h, st in zip(handlers, saved_handler_streams):
                h.setStream(st)
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)


def materialize_slice(home: Path, spark_resource) -> SliceRun:
    """Run ``recommendation_slice`` at :data:`TINY` size with ``home`` as RECSTACK_HOME/DAGSTER_HOME,
    capturing everything the run prints."""
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    log_path = home / "slice-run.log"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"RECSTACK_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}.items():
            mp.setenv(k, v)
        from orchestration.definitions import build_definitions

        job = build_definitions("local").resolve_job_def("recommendation_slice")
        # The console logger at INFO, as make run prints it.
        config = {**TINY, "loggers": {"console": {"config": {"log_level": "INFO"}}}}
        with dg.DagsterInstance.get() as instance, captured_output(log_path):
            result = job.execute_in_process(
                instance=instance, run_config=config, resources={"spark": spark_resource}
            )
    return SliceRun(home, result, log_path.read_text(errors="replace"))
