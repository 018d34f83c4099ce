"""Faiss settings per deployment: GPU use, CPU threads, and the recall target of tuned indexes."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource

GpuUse = Literal["auto", "always", "never"]


def gpu_available() -> bool:
    """True when this faiss build has GPU support and at least one GPU is visible."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class FaissResource(ConfigurableResource):
    """``use_gpu``: ``auto`` (GPU when faiss-gpu and a device are present), ``always`` or ``never``."""

    use_gpu: GpuUse = "auto"
    nprobe: int = 16

    def device(self) -> str:
        return "gpu" if self.use_gpu != "never" and gpu_available() else "cpu"
