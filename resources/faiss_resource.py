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
    """How indexes are built and searched in this deployment.

    ``use_gpu``: ``auto`` (GPU when faiss-gpu and a device are present), ``always`` or ``never``;
    ``threads``: CPU threads (0 = all cores); ``target_recall``: recall@k the search parameter is
    tuned to against exact search; ``memory_budget_mb``: what ``index_type="auto"`` may use for
    the vectors (past it: SQ8, then PQ); ``nprobe``: fix the search parameter instead of tuning.
    """

    use_gpu: GpuUse = "auto"
    threads: int = 0
    target_recall: float = 0.99
    memory_budget_mb: int = 8192
    nprobe: int | None = None

    def device(self) -> str:
        return "gpu" if self.use_gpu != "never" and gpu_available() else "cpu"
