"""Implicit ALS on a GPU with ``implicit``'s CUDA solver (needs a CUDA build of ``implicit``).

The CUDA solver has no per-row regularisation, so it always runs as the library does (constant
``reg``, ``implicit``'s own start): close to, not identical with, the Spark-matching CPU engine.
"""

from __future__ import annotations

import time

from assets.embeddings.als import AlsParams, confidence_matrix, fit_implicit_library, pack_factor_model
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
    t0 = time.perf_counter()
    m, user_ids, item_ids = confidence_matrix(interactions, params.alpha)
    uf, itf = fit_implicit_library(m, params, use_gpu=True)
    return pack_factor_model(
        "implicit-gpu",
        user_ids,
        uf,
        item_ids,
        itf,
        params,
        time.perf_counter() - t0,
        m.nnz,
        match_spark=False,
    )
