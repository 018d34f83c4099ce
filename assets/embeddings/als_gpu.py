"""Implicit ALS on a GPU with ``implicit``'s CUDA solver (needs a CUDA build of ``implicit``).

The CUDA solver has no per-row regularisation, so it always runs as the library does (constant
``reg``, ``implicit``'s own start): close to, not identical with, the Spark-matching CPU engine.
"""

from __future__ import annotations

from assets.embeddings.als import AlsParams
from assets.embeddings.factor_model import FactorModel


def gpu_available() -> bool:
    """True when ``implicit`` has its CUDA extension and a device is visible."""
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except Exception:  # noqa: BLE001 - any import/driver failure means "no GPU engine"
        return False


def train_als_gpu(interactions, params: AlsParams = AlsParams()) -> FactorModel:
    """Train on the GPU; factors come back to host memory in the same :class:`FactorModel`."""
    if not gpu_available():
        raise RuntimeError("the implicit-gpu ALS engine needs implicit built with CUDA and a visible GPU")
    from assets.embeddings.als_cpu import fit_native

    return fit_native(interactions, params, use_gpu=True)
