"""Process settings: the one module that reads or sets environment variables.

Every other module asks a function here. :func:`configure_process` sets the variables the stack
needs before its libraries import (gRPC, MLflow, Great Expectations, Spark). The Makefile,
``run_local``, the Definitions, the recall service and the test conftest call it.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE_START = "2026-01-01"

# Set (unless already set) before grpc, mlflow, great_expectations or pyspark import:
PROCESS_DEFAULTS = {
    # gRPC's fork handlers (pymilvus, Dagster) break the fork that launches Spark's JVM once a
    # channel is busy: "Java gateway process exited before sending its port number".
    "GRPC_ENABLE_FORK_SUPPORT": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "False",
    # Binding Spark to loopback avoids slow hostname resolution on sandboxed machines.
    "SPARK_LOCAL_IP": "127.0.0.1",
}


def configure_process() -> None:
    """Set :data:`PROCESS_DEFAULTS` (keeping values already in the environment), and make
    Spark's Python workers use this interpreter (the venv), not the first ``python3`` on PATH."""
    for k, v in PROCESS_DEFAULTS.items():
        os.environ.setdefault(k, v)
    configure_spark()


def ensure_default(name: str) -> None:
    """Set one of :data:`PROCESS_DEFAULTS` unless it is set (for a library imported late)."""
    os.environ.setdefault(name, PROCESS_DEFAULTS[name])


def configure_spark() -> None:
    """What a local Spark session needs (set unless already set): loopback binding, and this
    interpreter for the Python workers. (Not the gRPC setting: that one only counts before grpc
    imports, and :class:`~resources.spark.SparkResource` reports when it was missing.)"""
    os.environ.setdefault("SPARK_LOCAL_IP", PROCESS_DEFAULTS["SPARK_LOCAL_IP"])
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def env(name: str, default: str = "") -> str:
    """The variable ``name``, or ``default`` when it is unset or empty."""
    return os.environ.get(name) or default


def grpc_fork_support_disabled() -> bool:
    """Whether gRPC's fork handlers are off (see :data:`PROCESS_DEFAULTS`)."""
    return os.environ.get("GRPC_ENABLE_FORK_SUPPORT") == "false"


def deployment() -> str:
    """``local`` (embedded engines, the default) or ``prod``: from ``RECSTACK_DEPLOYMENT``."""
    d = env("RECSTACK_DEPLOYMENT", "local").strip().lower()
    if d not in ("local", "prod"):
        raise ValueError(f"RECSTACK_DEPLOYMENT must be 'local' or 'prod', not {d!r}")
    return d


def home() -> Path:
    """All local state lives here (``RECSTACK_HOME``, default ``<repo>/.recstack``)."""
    return Path(env("RECSTACK_HOME", str(REPO_ROOT / ".recstack"))).absolute()


def dagster_home() -> str:
    """``DAGSTER_HOME``, or a note that the instance is ephemeral."""
    return env("DAGSTER_HOME", "(not set: ephemeral)")


def storage_root() -> str:
    """Where the IO manager writes (``RECSTACK_STORAGE_ROOT``, default ``$RECSTACK_HOME/storage``)."""
    return env("RECSTACK_STORAGE_ROOT", str(home() / "storage"))


def event_log_root() -> str:
    """Where the service appends impressions and feedback (``RECSTACK_EVENT_LOG_ROOT``, default
    ``events/`` under the storage root)."""
    return env("RECSTACK_EVENT_LOG_ROOT", storage_root().rstrip("/") + "/events")


def hbase_host() -> str:
    """The HBase Thrift gateway in production (``RECSTACK_HBASE_HOST``)."""
    return env("RECSTACK_HBASE_HOST")


def realtime_source() -> str:
    """Where the real-time writer reads events: ``files`` (a landing folder, the default) or
    ``kafka`` (``RECSTACK_REALTIME_SOURCE``)."""
    return env("RECSTACK_REALTIME_SOURCE", "files")


def realtime_spark_master() -> str:
    """The Spark master of the real-time writer (``RECSTACK_REALTIME_SPARK_MASTER``, default
    ``local[2]``)."""
    return env("RECSTACK_REALTIME_SPARK_MASTER", "local[2]")


def kafka_bootstrap() -> str:
    """Kafka brokers of the real-time source (``RECSTACK_KAFKA_BOOTSTRAP``)."""
    return env("RECSTACK_KAFKA_BOOTSTRAP")


def kafka_topic() -> str:
    """The raw CRM events topic (``RECSTACK_KAFKA_TOPIC``, default ``recstack-crm-events``)."""
    return env("RECSTACK_KAFKA_TOPIC", "recstack-crm-events")


def alert_webhook_url() -> str:
    """Where run-failure and check-failure alerts are POSTed as JSON
    (``RECSTACK_ALERT_WEBHOOK_URL``; empty: no alerts)."""
    return env("RECSTACK_ALERT_WEBHOOK_URL")


def dagster_ui_url() -> str:
    """The Dagster UI the alerts link runs to (``RECSTACK_DAGSTER_UI_URL``)."""
    return env("RECSTACK_DAGSTER_UI_URL", "http://127.0.0.1:3000")


def challenger_share() -> float:
    """The share of ``/v1/recommend`` users (by a hash of the id) served the challenger models
    while a challenger differs from the champion (``RECSTACK_CHALLENGER_SHARE``, default 0)."""
    share = float(env("RECSTACK_CHALLENGER_SHARE", "0"))
    if not 0 <= share <= 1:
        raise ValueError(f"RECSTACK_CHALLENGER_SHARE must be in [0, 1], got {share}")
    return share


def mlflow_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, default the SQLite store under ``$RECSTACK_HOME/mlflow``."""
    return env("MLFLOW_TRACKING_URI", f"sqlite:///{home() / 'mlflow' / 'mlflow.db'}")


def serve_poll_seconds() -> float:
    """How often the recall service checks the registry for moved aliases
    (``RECSTACK_SERVE_POLL_SECONDS``)."""
    return float(env("RECSTACK_SERVE_POLL_SECONDS", "30"))


def serve_backend() -> str:
    """Where the recall service searches (``RECSTACK_SERVE_BACKEND``): ``faiss`` (the published
    indexes, loaded into each worker; the default) or ``milvus`` (the published collections,
    queried through their aliases; nothing per vector is held by a worker)."""
    b = env("RECSTACK_SERVE_BACKEND", "faiss").strip().lower()
    if b not in ("faiss", "milvus"):
        raise ValueError(f"RECSTACK_SERVE_BACKEND must be 'faiss' or 'milvus', not {b!r}")
    return b


def milvus_uri() -> str:
    """The Milvus the service reads (``RECSTACK_MILVUS_URI``, default the local Milvus Lite file)."""
    return env("RECSTACK_MILVUS_URI", str(home() / "milvus" / "recstack.db"))


def milvus_token() -> str:
    """Credentials for a Milvus server (``RECSTACK_MILVUS_TOKEN``; empty: none)."""
    return env("RECSTACK_MILVUS_TOKEN")


def api_key() -> str:
    """The recall service's API key (``RECSTACK_API_KEY``; empty: no key required)."""
    return env("RECSTACK_API_KEY")


def user() -> str:
    """Who runs a manual registry move (``USER``)."""
    return env("USER", "manual")


def shared_data() -> Path:
    """The public datasets (``RECSTACK_SHARED_DATA``, default ``../shared/data`` beside the repo)."""
    return Path(env("RECSTACK_SHARED_DATA", str(REPO_ROOT.parent / "shared" / "data")))


def warehouse_start() -> str:
    """The warehouse's first daily partition (``yyyy-mm-dd``).

    Production sets ``RECSTACK_WAREHOUSE_START`` (the first day of event data). Locally ``make run``
    records the earliest day it has filled in ``$RECSTACK_HOME/warehouse_start``, so
    the Dagster UI shows the days that exist, not months of empty partitions before them. Without
    either, :data:`DEFAULT_WAREHOUSE_START`.
    """
    if env("RECSTACK_WAREHOUSE_START"):
        return date.fromisoformat(env("RECSTACK_WAREHOUSE_START")).isoformat()
    f = home() / "warehouse_start"
    return date.fromisoformat(f.read_text().strip()).isoformat() if f.exists() else DEFAULT_WAREHOUSE_START


def record_local_start(first_day: date) -> str:
    """Record ``first_day`` as the local warehouse start unless an earlier one is recorded (or
    one is set): the start only moves back, so the days filled before stay partitions."""
    f = home() / "warehouse_start"
    if env("RECSTACK_WAREHOUSE_START"):
        return warehouse_start()
    if not f.exists() or first_day < date.fromisoformat(f.read_text().strip()):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(first_day.isoformat())
    return warehouse_start()


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra`` set: for a subprocess (a server, a benchmark worker)."""
    return {**os.environ, **extra}


if __name__ == "__main__":  # the Makefile exports these for the processes it starts (`make ui`, `make serve`)
    print(" ".join(f"{k}={v}" for k, v in PROCESS_DEFAULTS.items()))
