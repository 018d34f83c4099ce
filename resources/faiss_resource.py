"""Faiss settings per deployment: GPU use and default IVF probe count."""

from __future__ import annotations

from dagster import ConfigurableResource

from assets.indexes.faiss_index import gpu_available


class FaissResource(ConfigurableResource):
    """``use_gpu``: ``auto`` (GPU when faiss-gpu and a device are present), ``always`` or ``never``."""

    use_gpu: str = "auto"
    nprobe: int = 16

    def device(self) -> str:
        return "gpu" if self.use_gpu != "never" and gpu_available() else "cpu"
