"""Kubernetes, offline: every manifest validates against the Kubernetes schemas, and the step Job
that dagster-k8s builds for a GPU asset carries the GPU limit, the node selector and the tolerations."""

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
KUBE_VERSION = "1.30.0"


def manifests():
    for path in sorted(K8S.glob("*.yaml")):
        if not path.name.startswith("values-"):
            for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
                if doc:
                    yield pytest.param(doc, id=f"{path.name}#{i}")


@pytest.mark.parametrize("doc", list(manifests()))
def test_manifests_validate_against_the_kubernetes_schema(doc):
    import kubernetes_validate

    kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)  # raises on any schema error


def test_no_secret_values_in_the_files():
    for path in K8S.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (doc or {}).get("kind") == "Secret", (
                f"{path.name} writes a Secret: reference one instead"
            )


def test_helm_values_wire_the_run_launcher_and_run_retries():
    v = yaml.safe_load((K8S / "values-dagster.yaml").read_text())
    assert v["runLauncher"]["type"] == "K8sRunLauncher" and v["postgresql"]["enabled"]
    assert v["dagsterDaemon"]["runRetries"] == {"enabled": True, "maxRetries": 2}


@pytest.mark.parametrize("asset", ["two_tower_model", "two_tower_tuning", "faiss_index_als_users"])
def test_gpu_step_job_spec_renders_offline(asset):
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config
    from kubernetes.client import ApiClient

    from orchestration.definitions import build_definitions

    defs = build_definitions("prod")
    node = next(a for a in defs.assets if dg.AssetKey(asset) in a.keys)
    tags = {k: v if isinstance(v, str) else json.dumps(v) for k, v in node.op.tags.items()}
    cfg = DagsterK8sJobConfig(
        job_image="registry.example.com/recstack:0.1.0",
        dagster_home="/opt/dagster/home",
        instance_config_map="dagster-instance",
    )
    job = construct_dagster_k8s_job(
        cfg,
        ["dagster", "api", "execute_step"],
        f"dagster-step-{asset.replace('_', '-')}",
        user_defined_k8s_config=get_user_defined_k8s_config(tags),
    )
    spec = job.spec.template.spec
    assert spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    assert spec.node_selector == {"recstack.io/accelerator": "nvidia"}
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in spec.tolerations)
    import kubernetes_validate

    kubernetes_validate.validate(ApiClient().sanitize_for_serialization(job), KUBE_VERSION, strict=True)


def test_images_copy_every_package():
    """A package the wheel installs but an image does not copy fails at import in the pod."""
    import re
    import tomllib

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]
    packages = {p.rstrip("*") for p in include}
    for name in ("Dockerfile", "Dockerfile.cuda"):
        copied = set(re.findall(r"^COPY (\w+) \1$", (REPO / "k8s" / name).read_text(), re.M))
        assert packages <= copied, f"k8s/{name} does not copy {sorted(packages - copied)}"
