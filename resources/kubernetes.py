"""Kubernetes hints attached to steps: they take effect only under dagster-k8s executors."""

from __future__ import annotations


def gpu_op_tags(gpus: int = 1, node_selector: dict | None = None) -> dict:
    """``dagster-k8s/config`` tags that put a step on a GPU node (ignored by in-process runs)."""
    return {
        "dagster-k8s/config": {
            "container_config": {
                "resources": {
                    "limits": {"nvidia.com/gpu": str(gpus)},
                    "requests": {"nvidia.com/gpu": str(gpus)},
                }
            },
            "pod_spec_config": {
                "node_selector": node_selector or {"recstack.io/accelerator": "nvidia"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            },
        }
    }
