"""Spark's JVM starts in a process where a Milvus (gRPC) call is in flight, as when ``als_model``
runs after the Milvus assets in one in-process run.

gRPC's fork handlers race with the fork that launches the JVM: on the 2-core development machine
under load, 1 launch in 3 failed ("Java gateway process exited before sending its port number")
with them on, and none with ``GRPC_ENABLE_FORK_SUPPORT=false``. A race cannot be forced in a test,
so this checks the setting's path works and that the failure, when it happens, says what to set.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from recstack import settings

SCRIPT = """
import sys, threading
from resources.milvus import milvus_client
from resources.spark import SparkResource
c = milvus_client(sys.argv[1])
c.create_collection("x", dimension=4)
c.insert("x", [{"id": i, "vector": [0.1, 0.2, 0.3, float(i)]} for i in range(10)])
stop = threading.Event()
def busy():  # keep gRPC calls in flight while Spark forks its launcher
    while not stop.is_set():
        c.search("x", [[0.1, 0.2, 0.3, 0.4]], limit=3)
threading.Thread(target=busy, daemon=True).start()
print("spark rows", SparkResource(driver_memory="1g").get_session().range(3).count(), flush=True)
stop.set()
"""


@pytest.mark.slow
def test_spark_starts_while_grpc_calls_are_in_flight(tmp_path):
    env = settings.child_env(
        GRPC_ENABLE_FORK_SUPPORT="false", PYTHONPATH=str(Path(__file__).resolve().parents[1])
    )
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "milvus.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "spark rows 3" in out.stdout, out.stderr[-2000:]


def test_a_gateway_failure_after_grpc_names_the_setting(monkeypatch):
    import grpc  # noqa: F401 - loaded, as in any Dagster process
    from pyspark.sql import SparkSession

    from resources.spark import SparkResource

    def fail(self):
        raise RuntimeError(
            "[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number."
        )

    monkeypatch.setattr(SparkSession.Builder, "getOrCreate", fail)
    monkeypatch.delenv("GRPC_ENABLE_FORK_SUPPORT", raising=False)
    with pytest.raises(RuntimeError, match="GRPC_ENABLE_FORK_SUPPORT=false"):
        SparkResource().get_session()
    monkeypatch.setenv("GRPC_ENABLE_FORK_SUPPORT", "false")  # set, and it still failed: the original error
    with pytest.raises(RuntimeError, match="JAVA_GATEWAY_EXITED"):
        SparkResource().get_session()
