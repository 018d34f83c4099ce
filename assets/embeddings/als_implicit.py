"""Implicit ALS on one machine with the ``implicit`` library (multithreaded C++/Cython).

Same model as the Spark engine: Spark weights each observed pair by ``c = 1 + alpha * confidence``;
``implicit`` takes the matrix values as ``c`` directly, so it is given ``1 + alpha * confidence``
with its own ``alpha=1``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.embeddings.als import AlsParams, index_ids
from assets.embeddings.factor_model import FactorModel

log = logging.getLogger(__name__)


def train_als_implicit(interactions: pd.DataFrame, params: AlsParams = AlsParams(), use_gpu: bool = False) -> FactorModel:
    """Train implicit ALS with ``implicit.als.AlternatingLeastSquares``.

    Parameters
    ----------
    interactions : DataFrame
        ``user_id``, ``item_id``, ``confidence``.
    params : AlsParams
        The same parameters the Spark engine takes.
    use_gpu : bool
        Use implicit's CUDA solver (needs a GPU build of implicit).
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit parallelises itself
    from threadpoolctl import threadpool_limits
    from implicit.als import AlternatingLeastSquares

    t0 = time.perf_counter()
    triples, user_ids, item_ids = index_ids(interactions)
    conf = 1.0 + params.alpha * triples["confidence"].to_numpy(np.float32)
    m = sp.csr_matrix((conf, (triples["u"].to_numpy(), triples["i"].to_numpy())), shape=(len(user_ids), len(item_ids)))
    model = AlternatingLeastSquares(factors=params.rank, regularization=params.reg, alpha=1.0, iterations=params.iterations,
                                    random_state=params.seed, use_gpu=use_gpu, calculate_training_loss=False)
    with threadpool_limits(1, "blas"):
        model.fit(m, show_progress=False)
    if use_gpu:
        model = model.to_cpu()
    secs = time.perf_counter() - t0
    log.info("implicit ALS: %d users, %d items, rank %d in %.1fs", len(user_ids), len(item_ids), params.rank, secs)
    return FactorModel(
        user_ids=user_ids, user_factors=np.asarray(model.user_factors, np.float32),
        item_ids=item_ids, item_factors=np.asarray(model.item_factors, np.float32),
        params={"engine": "implicit", **asdict(params), "train_seconds": round(secs, 2), "n_pairs": int(len(triples))},
    )


def train_als(engine: str, interactions: pd.DataFrame, params: AlsParams, spark=None) -> FactorModel:
    """Dispatch to an ALS engine: ``spark`` (needs ``spark``), ``implicit`` (CPU) or ``implicit-gpu``."""
    if engine == "spark":
        from assets.embeddings.als import train_als_spark

        return train_als_spark(spark, interactions, params)
    if engine in ("implicit", "implicit-gpu"):
        return train_als_implicit(interactions, params, use_gpu=engine == "implicit-gpu")
    raise ValueError(f"unknown ALS engine {engine!r} (spark, implicit, implicit-gpu)")
