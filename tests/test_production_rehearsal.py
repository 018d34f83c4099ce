"""A production rehearsal on this machine: the ``prod`` code location against real services.

The test starts, itself, on 127.0.0.1:
- PostgreSQL (Debian's server binaries, a throwaway cluster): Dagster's run, event-log and
  schedule storage (``dagster-postgres``) and the MLflow server's backend store;
- an ``mlflow server`` process over that Postgres database, serving artifacts itself;
- the Milvus standalone server (``milvus-server``).

It loads ``build_definitions("prod")`` (the resources production uses, configured by the same
environment variables a pod gets), materializes the entity slice (profiles → vectors →
promotion → Milvus collection) and then reads each service directly to check that the run, its
materializations, the registered version, its aliases and the served collection all landed there.
What it does not cover: HBase, Spark on a cluster and the Kubernetes executor (steps run in-process).
"""

from __future__ import annotations

import dagster as dg
import pytest

from tests.support import servers

pytestmark = [pytest.mark.slow, pytest.mark.milvus]

SELECTION = ["entity_profiles", "entity_vectors", "entity_vectors_promotion", "milvus_collection_entities"]
RUN_CONFIG = {
    "ops": {"entity_profiles": {"config": {"n_entities": 400}}, "entity_vectors": {"config": {"epochs": 60}}}
}


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """Postgres (databases ``dagster`` and ``mlflow``), an MLflow server on it, and Milvus."""
    root = tmp_path_factory.mktemp("rehearsal")
    try:
        # Milvus first: its internal ports (etcd, coordinators) are fixed defaults, which the others'
        # free-port picks then avoid.
        with (
            servers.milvus_server(root / "milvus") as milvus_uri,
            servers.postgres_server(root / "pg", databases=("dagster", "mlflow")) as pg,
            servers.mlflow_server(root / "mlflow", backend_uri=f"{pg}/mlflow") as mlflow_url,
        ):
            yield {"root": root, "pg": pg, "mlflow": mlflow_url, "milvus": milvus_uri}
    except servers.NotInstalled as e:
        servers.skip_not_installed(servers.NotInstalled(f"production rehearsal needs its services: {e}"))


def _instance_yaml(pg: str) -> str:
    # The storage block the Dagster Helm chart renders for its Postgres (k8s/values-dagster.yaml).
    host_port = pg.split("@", 1)[1]
    host, port = host_port.split(":")
    return (
        "telemetry:\n  enabled: false\n"
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      hostname: {host}\n      port: {port}\n      username: postgres\n      password: ''\n      "
        f"db_name: dagster\n"
        "      scheme: postgresql+psycopg2\n"  # postgresql.postgresqlScheme in the Helm values; see there why
    )


def test_prod_location_lands_runs_registry_and_aliases_in_real_services(services, monkeypatch):
    root = services["root"]
    home = root / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text(_instance_yaml(services["pg"]))
    env = {
        "RECSTACK_DEPLOYMENT": "prod",
        "DAGSTER_HOME": str(home),
        "RECSTACK_STORAGE_ROOT": str(root / "storage"),
        "MLFLOW_TRACKING_URI": services["mlflow"],
        "RECSTACK_MLFLOW_UI_URL": services["mlflow"],
        "RECSTACK_MILVUS_URI": services["milvus"],
        "RECSTACK_MILVUS_TOKEN": "root:Milvus",
        # Unused by this selection, but a pod gets them all: the location must resolve with them.
        "RECSTACK_SPARK_MASTER": "local[2]",
        "RECSTACK_HBASE_HOST": "127.0.0.1",
        "RECSTACK_CRM_EVENTS_PATH": str(root / "crm-events.csv"),
        "RECSTACK_CRM_OPPORTUNITIES_PATH": str(root / "crm-opps.csv"),
        "RECSTACK_EXPORT_ROOT": str(root / "exports"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)

    from orchestration.definitions import build_definitions
    from recstack.settings import deployment

    assert deployment() == "prod"
    defs = build_definitions()
    assert "k8s" in defs.executor.name  # production runs a pod per step; here the steps run in-process

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = dg.materialize(
            defs.assets,
            selection=SELECTION,
            resources=defs.resources,
            instance=instance,
            run_config=RUN_CONFIG,
            tags={"rehearsal": "true"},
        )
        assert result.success
        run_id = result.run_id

    # Dagster: the run and its materializations are rows in Postgres, read with a plain client.
    import psycopg

    with psycopg.connect(f"{services['pg']}/dagster") as conn:
        status = conn.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        assert status == ("SUCCESS",)
        materialized = {
            r[0]
            for r in conn.execute(
                "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = "
                "'ASSET_MATERIALIZATION'",
                (run_id,),
            )
        }
        assert materialized == {f'["{a}"]' for a in SELECTION}
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"runs", "event_logs", "jobs", "job_ticks"} <= tables  # run, event-log and schedule storage

    # MLflow: the version, its run and both aliases are in the server's Postgres backend.
    from mlflow import MlflowClient

    client = MlflowClient(services["mlflow"])
    champion = client.get_model_version_by_alias("recstack-entity-vectors", "champion")
    assert client.get_run(champion.run_id).data.tags["dagster_run_id"] == run_id
    with psycopg.connect(f"{services['pg']}/mlflow") as conn:
        aliases = dict(
            conn.execute(
                "SELECT alias, version FROM registered_model_aliases WHERE name = %s",
                ("recstack-entity-vectors",),
            ).fetchall()
        )
    assert aliases == {"champion": 1, "challenger": 1}
    tags = client.get_model_version("recstack-entity-vectors", "1").tags
    assert tags.get("recstack.promotion") == "champion", tags

    # Milvus: the served alias points at the verified collection on the standalone server.
    from resources.milvus import milvus_client

    mc = milvus_client(services["milvus"], "root:Milvus")
    assert mc.describe_alias("recstack_entities")["collection_name"] == "recstack_entities__v1"
    assert mc.get_collection_stats("recstack_entities__v1")["row_count"] == 400
