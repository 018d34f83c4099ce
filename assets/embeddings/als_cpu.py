"""The single-node engine of implicit ALS: the ``implicit`` library's multithreaded CPU kernels.

Same model as the Spark engine: Spark weights each observed pair by ``c = 1 + alpha * confidence``;
``implicit`` takes the matrix values as ``c`` directly, so it is given ``1 + alpha * confidence``
with its own ``alpha=1``. Spark also scales the regularisation of each user (item) by its number
of interactions (ALS-WR, Zhou et al. 2008) and starts from unit-length Gaussian factors;
``implicit`` uses one constant and a small uniform start. By default (``match_spark``) the CPU
engine solves Spark's normal equations exactly from Spark's kind of start, with implicit's kernels
called per run of rows with similar counts, so switching engines does not move the metrics.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.embeddings.als import AlsParams, confidence_matrix, fit_implicit_library, pack_factor_model
from assets.embeddings.factor_model import FactorModel

log = logging.getLogger(__name__)


def _buckets(counts: np.ndarray, ratio: float) -> list[tuple[int, int]]:
    """Contiguous ``[a, b)`` runs of rows (sorted by count) whose counts lie within ``ratio``."""
    if np.any(np.diff(counts) < 0):
        raise ValueError("rows must be sorted by their number of interactions")
    key = np.floor(np.log(np.maximum(counts, 1)) / np.log(ratio)).astype(np.int64)
    cuts = [0, *(np.flatnonzero(np.diff(key)) + 1).tolist(), len(counts)]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def weighted_reg_solve(
    cui: sp.csr_matrix,
    x: np.ndarray,
    y: np.ndarray,
    reg: float,
    cg_steps: int | None = None,
    bucket_ratio: float = 1.05,
) -> None:
    """One ALS half-step in place: each row ``u`` of ``x`` from ``y`` with regularisation ``reg * n_u``.

    ``cui`` holds confidences with rows sorted by their number of interactions ``n_u``. Runs of rows
    whose counts lie within ``bucket_ratio`` (every count below 20 is its own run) are solved with
    the run's mean ``reg * n`` by implicit's kernels, on views (no copies of ``cui`` or ``x``):
    exactly (Cholesky, as Spark solves) when ``cg_steps`` is None, else by that many warm-started
    conjugate-gradient steps (implicit's default is 3: faster, and not Spark's solution).
    """
    from implicit.cpu import _als

    counts = np.diff(cui.indptr)
    for a, b in _buckets(counts, bucket_ratio):
        p0, p1 = cui.indptr[a], cui.indptr[b]
        sub = sp.csr_matrix(
            (cui.data[p0:p1], cui.indices[p0:p1], cui.indptr[a : b + 1] - p0), shape=(b - a, cui.shape[1])
        )
        lam = float(reg * counts[a:b].mean())
        if cg_steps is None:
            _als.least_squares(sub, x[a:b], y, lam, num_threads=0)
        else:
            _als.least_squares_cg(sub, x[a:b], y, lam, num_threads=0, cg_steps=cg_steps)


def _spark_init(rng, n: int, rank: int) -> np.ndarray:
    """Spark's initial factors: Gaussian rows scaled to unit length."""
    a = rng.normal(size=(n, rank)).astype(np.float32)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _fit_spark_objective(m: sp.csr_matrix, params: AlsParams) -> tuple[np.ndarray, np.ndarray]:
    """Spark's implicit ALS on one node: λ·n per row, unit-Gaussian start, item half-step first,
    exact solves.

    Users and items are permuted once so that rows are sorted by count; every half-step then solves
    contiguous runs in place. Factors come back in the original order.
    """
    m = m.astype(np.float32)
    pu = np.argsort(np.diff(m.indptr), kind="stable")
    pi = np.argsort(np.bincount(m.indices, minlength=m.shape[1]), kind="stable")
    mu = m[pu][:, pi].tocsr()
    mi = mu.T.tocsr()
    rng = np.random.default_rng(params.seed)
    x = np.ascontiguousarray(_spark_init(rng, m.shape[0], params.rank)[pu])
    y = np.ascontiguousarray(_spark_init(rng, m.shape[1], params.rank)[pi])
    for it in range(params.iterations):  # items first, as Spark alternates
        weighted_reg_solve(mi, y, x, params.reg)
        weighted_reg_solve(mu, x, y, params.reg)
        log.debug("Spark-objective ALS iteration %d", it)
    uf, itf = np.empty_like(x), np.empty_like(y)
    uf[pu], itf[pi] = x, y
    return uf, itf


def train_als_cpu(
    interactions: pd.DataFrame, params: AlsParams = AlsParams(), match_spark: bool = True
) -> FactorModel:
    """Train implicit ALS on the CPU.

    Parameters
    ----------
    interactions : DataFrame
        ``user_id``, ``item_id``, ``confidence``.
    params : AlsParams
        The same parameters the Spark engine takes.
    match_spark : bool
        Minimise Spark's objective from Spark's starting point (default): ``reg`` scaled by each
        row's interaction count, factors initialised as unit-length Gaussian rows, items solved
        first and exactly, so the engines give the same quality. ``False`` is the ``implicit``
        library as it is (see ``benchmarks/als_engines.py`` for both).

    Returns
    -------
    FactorModel
    """
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    m, user_ids, item_ids = confidence_matrix(interactions, params.alpha)
    with threadpool_limits(1, "blas"):  # implicit parallelises itself
        uf, itf = (
            _fit_spark_objective(m, params) if match_spark else fit_implicit_library(m, params, use_gpu=False)
        )
    return pack_factor_model(
        "implicit",
        user_ids,
        uf,
        item_ids,
        itf,
        params,
        time.perf_counter() - t0,
        m.nnz,
        match_spark=match_spark,
    )
