"""Definitions load for both deployments; the CLI validates the workspace."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from recstack import settings

REPO = Path(__file__).resolve().parents[1]


def test_prod_constructs_without_connecting(monkeypatch):
    from orchestration.definitions import build_definitions

    defs = build_definitions("prod")
    job = defs.resolve_job_def("recommendation_slice")
    assert job.executor_def.name == "k8s"
    assert set(defs.resources) >= {"io_manager", "spark", "mlflow_tracking", "gx", "faiss_cfg"}


def test_bad_deployment_name_is_rejected(monkeypatch):
    from recstack.settings import deployment

    monkeypatch.setenv("RECSTACK_DEPLOYMENT", "staging")
    with pytest.raises(ValueError, match="local' or 'prod"):
        deployment()


def test_gpu_steps_carry_k8s_tags():
    from orchestration.definitions import build_definitions

    defs = build_definitions("local")
    node = next(a for a in defs.assets if dg.AssetKey("faiss_index_als_users") in a.keys)
    tags = node.op.tags["dagster-k8s/config"]
    assert "nvidia.com/gpu" in str(tags)


@pytest.mark.slow
@pytest.mark.parametrize("deployment", ["local", "prod"])
def test_cli_validates_workspace(deployment, tmp_path):
    env = settings.child_env(RECSTACK_DEPLOYMENT=deployment, DAGSTER_HOME=str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = Path(sys.executable).with_name("dagster")
    out = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
