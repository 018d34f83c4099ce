"""Implicit ALS on one machine with the ``implicit`` library (multithreaded C++/Cython).

Same model as the Spark engine: Spark weights each observed pair by ``c = 1 + alpha * confidence``;
``implicit`` takes the matrix values as ``c`` directly, so it is given ``1 + alpha * confidence``
with its own ``alpha=1``. Spark also scales the regularisation of each user (item) by its number
of interactions (ALS-WR, Zhou et al. 2008); ``implicit`` uses one constant. The CPU engine here
solves with implicit's conjugate-gradient kernel, called per bucket of rows with similar counts
and the bucket's ``reg * n``, so both engines minimise the same objective (``weighted_reg``).
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


def weighted_reg_solve(cui: sp.csr_matrix, x: np.ndarray, y: np.ndarray, reg: float, cg_steps: int = 3,
                       bucket_ratio: float = 1.05) -> None:
    """One ALS half-step in place: each row ``u`` of ``x`` from ``y`` with regularisation ``reg * n_u``.

    Rows are grouped into buckets whose interaction counts differ by at most ``bucket_ratio`` (exact
    counts below ~20), and each bucket is solved by implicit's CG kernel with the bucket's mean
    ``reg * n``; ``x`` is updated in place like implicit's own solver.
    """
    from implicit.cpu import _als

    counts = np.diff(cui.indptr)
    bucket = np.floor(np.log(np.maximum(counts, 1)) / np.log(bucket_ratio)).astype(np.int64)
    order = np.argsort(bucket, kind="stable")
    bounds = np.flatnonzero(np.diff(bucket[order])) + 1
    for rows in np.split(order, bounds):
        sub = cui[rows]
        xs = np.ascontiguousarray(x[rows])
        _als.least_squares_cg(sub, xs, y, float(reg * counts[rows].mean()), num_threads=0, cg_steps=cg_steps)
        x[rows] = xs


def _fit_weighted_reg(m: sp.csr_matrix, params: AlsParams) -> tuple[np.ndarray, np.ndarray]:
    """Alternating weighted-λ CG solves, initialised as implicit initialises (uniform × 0.01)."""
    rng = np.random.default_rng(params.seed)
    m = m.astype(np.float32)
    mt = m.T.tocsr()
    x = (rng.random((m.shape[0], params.rank), dtype=np.float32) * 0.01)
    y = (rng.random((m.shape[1], params.rank), dtype=np.float32) * 0.01)
    for it in range(params.iterations):
        weighted_reg_solve(m, x, y, params.reg)
        weighted_reg_solve(mt, y, x, params.reg)
        log.debug("weighted-λ ALS iteration %d", it)
    return x, y


def train_als_implicit(interactions: pd.DataFrame, params: AlsParams = AlsParams(), use_gpu: bool = False,
                       weighted_reg: bool = True) -> FactorModel:
    """Train implicit ALS with ``implicit.als.AlternatingLeastSquares``.

    Parameters
    ----------
    interactions : DataFrame
        ``user_id``, ``item_id``, ``confidence``.
    params : AlsParams
        The same parameters the Spark engine takes.
    use_gpu : bool
        Use implicit's CUDA solver (needs a GPU build of implicit). It has no per-row
        regularisation, so it always uses the constant ``reg``.
    weighted_reg : bool
        Scale ``reg`` by each row's interaction count as Spark does (default); ``False`` is
        implicit's own constant regularisation.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit parallelises itself
    from threadpoolctl import threadpool_limits
    from implicit.als import AlternatingLeastSquares

    t0 = time.perf_counter()
    triples, user_ids, item_ids = index_ids(interactions)
    conf = 1.0 + params.alpha * triples["confidence"].to_numpy(np.float32)
    m = sp.csr_matrix((conf, (triples["u"].to_numpy(), triples["i"].to_numpy())), shape=(len(user_ids), len(item_ids)))
    weighted = weighted_reg and not use_gpu
    with threadpool_limits(1, "blas"):
        if weighted:
            uf, itf = _fit_weighted_reg(m, params)
        else:
            model = AlternatingLeastSquares(factors=params.rank, regularization=params.reg, alpha=1.0, iterations=params.iterations,
                                            random_state=params.seed, use_gpu=use_gpu, calculate_training_loss=False)
            model.fit(m, show_progress=False)
            model = model.to_cpu() if use_gpu else model
            uf, itf = model.user_factors, model.item_factors
    secs = time.perf_counter() - t0
    log.info("implicit ALS: %d users, %d items, rank %d in %.1fs", len(user_ids), len(item_ids), params.rank, secs)
    return FactorModel(
        user_ids=user_ids, user_factors=np.asarray(uf, np.float32),
        item_ids=item_ids, item_factors=np.asarray(itf, np.float32),
        params={"engine": "implicit", **asdict(params), "weighted_reg": weighted, "train_seconds": round(secs, 2), "n_pairs": int(len(triples))},
    )


def train_als(engine: str, interactions: pd.DataFrame, params: AlsParams, spark=None) -> FactorModel:
    """Dispatch to an ALS engine: ``spark`` (needs ``spark``), ``implicit`` (CPU) or ``implicit-gpu``."""
    if engine == "spark":
        from assets.embeddings.als import train_als_spark

        return train_als_spark(spark, interactions, params)
    if engine in ("implicit", "implicit-gpu"):
        return train_als_implicit(interactions, params, use_gpu=engine == "implicit-gpu")
    raise ValueError(f"unknown ALS engine {engine!r} (spark, implicit, implicit-gpu)")
