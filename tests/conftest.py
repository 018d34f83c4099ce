"""Shared fixtures: one Spark session per test session, temporary RecStack homes, shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from recstack import settings

settings.configure_process()  # before any test imports grpc, mlflow, great_expectations or pyspark

SHARED_DATA = settings.shared_data()


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA / name
    if not p.exists():
        pytest.skip(
            f"shared dataset {name!r} not found at {p} (set RECSTACK_SHARED_DATA to its parent folder)"
        )
    return p


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """A Milvus standalone server per test module (module scope: it is stopped before the next
    module, such as the production rehearsal, starts its own; two on one machine do not come up).
    Skips only where the package is missing."""
    from tests.support import servers

    try:
        with servers.milvus_server(tmp_path_factory.mktemp("milvus-server")) as uri:
            yield uri
    except servers.NotInstalled as e:
        servers.skip_not_installed(e)


@pytest.fixture(scope="session")
def spark_resource():
    from resources.spark import SparkResource

    res = SparkResource(master="local[2]", driver_memory="2g", shuffle_partitions=4)
    yield res
    res.get_session().stop()


@pytest.fixture(scope="session")
def spark(spark_resource):
    return spark_resource.get_session()


@pytest.fixture
def recstack_home(tmp_path, monkeypatch):
    """A fresh RECSTACK_HOME and DAGSTER_HOME for one test."""
    home = tmp_path / "home"
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("RECSTACK_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return home


@pytest.fixture(scope="session")
def materialized_slice(tmp_path_factory, spark_resource):
    """The recommendation slice, materialized once per session in a home of its own."""
    from tests.support.slice import materialize_slice

    return materialize_slice(tmp_path_factory.mktemp("slice") / "home", spark_resource)
