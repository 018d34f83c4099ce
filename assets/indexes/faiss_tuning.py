"""Choosing a Faiss index from the data, and tuning its search knob to a recall target.

:func:`plan_index` picks the index from the vector count, the dimension and a memory budget;
:func:`tune_search` finds the smallest ``nprobe`` (IVF) or ``efSearch`` (HNSW) whose recall@k
against exact search, on a sample of queries, reaches the target. Exact neighbours come from
``faiss.knn`` over the caller's matrix: no second copy of the vectors is made.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import faiss
import numpy as np

log = logging.getLogger(__name__)

EXACT_MAX = 50_000  # brute force is fast enough and exact up to here
HNSW_MAX = 300_000  # HNSW pays off for mid-size, higher-dimensional sets (no training; slow to build beyond)
HNSW_MIN_DIM = 32
KMEANS_ITERATIONS = 10  # Faiss' default 25 costs 2.5x the training time for clusters that tuning makes up for
TRAIN_PER_LIST = 64  # Faiss warns below 39 points per centroid; 256 only slows training


@dataclass(frozen=True)
class IndexPlan:
    """What :func:`plan_index` chose and why."""

    factory: str
    reason: str
    train_size: int
    bytes_estimate: int


def _nlist(n: int) -> int:
    """Inverted lists: about sqrt(n), a power of two, in [64, 65536]."""
    return int(min(65536, max(64, 2 ** round(math.log2(math.sqrt(n))))))


def plan_index(n: int, dim: int, memory_budget_bytes: int = 8 << 30) -> IndexPlan:
    """The index ``index_type="auto"`` builds for ``n`` vectors of ``dim`` within the budget.

    - ``Flat`` (exact) up to ``EXACT_MAX`` vectors;
    - ``HNSW32`` for mid-size sets of dimension >= 32 (graph search; no training);
    - ``IVF{≈√n},Flat`` when the raw vectors fit the budget;
    - ``IVF…,SQ8`` (1 byte per component) when only a quarter does;
    - ``IVF…,PQ{m}`` (m bytes per vector) below that.
    """
    raw = n * dim * 4
    if n <= EXACT_MAX:
        return IndexPlan("Flat", f"exact: {n:,} vectors <= {EXACT_MAX:,}", 0, raw)
    if raw <= memory_budget_bytes and n <= HNSW_MAX and dim >= HNSW_MIN_DIM:
        return IndexPlan(
            "HNSW32",
            f"graph: {n:,} vectors <= {HNSW_MAX:,} of dim {dim} >= {HNSW_MIN_DIM}",
            0,
            raw + n * 32 * 2 * 4,
        )
    nlist = _nlist(n)
    train = min(n, TRAIN_PER_LIST * nlist)
    if raw + n * 8 <= memory_budget_bytes:
        return IndexPlan(
            f"IVF{nlist},Flat",
            f"inverted lists: raw vectors ({raw / 2**20:,.0f} MiB) fit the budget",
            train,
            raw + n * 8,
        )
    if n * dim + n * 8 <= memory_budget_bytes:
        return IndexPlan(
            f"IVF{nlist},SQ8",
            "8-bit scalar quantisation: raw vectors exceed the budget",
            train,
            n * dim + n * 8,
        )
    m = next((m for m in (64, 32, 16, 8, 4, 2, 1) if dim % m == 0 and n * (m + 8) <= memory_budget_bytes), 1)
    return IndexPlan(
        f"IVF{nlist},PQ{m}",
        f"product quantisation ({m} bytes per vector): SQ8 exceeds the budget",
        train,
        n * (m + 8),
    )


def exact_neighbors(base: np.ndarray, queries: np.ndarray, k: int, metric: str = "ip") -> np.ndarray:
    """Row positions of the exact top-k neighbours (brute force over ``base``, no copy of it)."""
    mt = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    _, pos = faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32),
        np.ascontiguousarray(base, dtype=np.float32),
        k,
        metric=mt,
    )
    return pos


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` found in the same row of ``found`` (positions or ids)."""
    k = truth.shape[1]
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=1) & (truth >= 0)
    return float(hits.sum() / (len(truth) * k)) if len(truth) else 1.0


def search_knob(index) -> tuple[str | None, int | None]:
    """The search-time parameter of ``index`` and its value: ``nprobe``, ``efSearch`` or none."""
    try:
        ivf = faiss.extract_index_ivf(index)
        return "nprobe", int(ivf.nprobe)
    except RuntimeError:
        pass
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    return ("efSearch", int(hnsw.efSearch)) if hnsw is not None else (None, None)


def set_search_knob(index, value: int) -> None:
    name, _ = search_knob(index)
    if name == "nprobe":
        faiss.extract_index_ivf(index).nprobe = int(value)
    elif name == "efSearch":
        faiss.downcast_index(index).hnsw.efSearch = int(value)


def tune_search(
    index,
    base: np.ndarray,
    k: int = 10,
    target: float = 0.99,
    sample: int = 1000,
    metric: str = "ip",
    seed: int = 0,
    queries: np.ndarray | None = None,
) -> dict:
    """Set the smallest search parameter whose recall@k reaches ``target``.

    Parameters
    ----------
    index : faiss.Index
        A built CPU index over ``base`` (rows in the same order).
    base : ndarray (n, dim)
        The indexed vectors, for exact search.
    k, target : int, float
        Recall@k against exact search that the parameter must reach.
    sample : int
        Queries drawn from ``base`` (seeded) unless ``queries`` are given.

    Returns
    -------
    dict
        ``param``, ``value``, ``recall`` (achieved on the sample), ``curve`` ([value, recall] tried),
        ``target``, ``n_queries``, ``tune_seconds``. For exact indexes ``param`` is None and
        recall 1.0.
    """
    t0 = time.perf_counter()
    name, current = search_knob(index)
    if queries is None:
        rng = np.random.default_rng(seed)
        queries = base[np.sort(rng.choice(len(base), size=min(sample, len(base)), replace=False))]
    k = min(k, len(base))
    if name is None:
        return {
            "param": None,
            "value": None,
            "recall": 1.0,
            "curve": [],
            "target": target,
            "n_queries": len(queries),
            "tune_seconds": round(time.perf_counter() - t0, 3),
        }
    truth = exact_neighbors(base, queries, k, metric)
    upper = int(faiss.extract_index_ivf(index).nlist) if name == "nprobe" else 4096
    lower = 1 if name == "nprobe" else k
    curve: dict[int, float] = {}

    def rec(v: int) -> float:
        if v not in curve:
            set_search_knob(index, v)
            curve[v] = recall_at_k(index.search(queries, k)[1], truth)
        return curve[v]

    v = lower
    while v < upper and rec(v) < target:  # doubling: recall grows with the parameter
        v = min(upper, v * 2)
    lo, hi = max(lower, v // 2), v
    if rec(hi) >= target:
        while hi - lo > 1:  # then the smallest passing value between the last failure and it
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if rec(mid) >= target else (mid, hi)
        best = hi if rec(lo) < target else lo
    else:
        best = hi  # the target is out of reach: the most thorough setting
    set_search_knob(index, best)
    log.info(
        "tuned %s=%d: recall@%d %.4f (target %.2f) in %.1fs",
        name,
        best,
        k,
        curve[best],
        target,
        time.perf_counter() - t0,
    )
    return {
        "param": name,
        "value": int(best),
        "recall": float(curve[best]),
        "curve": sorted(curve.items()),
        "target": target,
        "n_queries": int(len(queries)),
        "tune_seconds": round(time.perf_counter() - t0, 3),
        "previous": current,
    }


def measure_recall(index, vectors: np.ndarray, k: int = 10, sample: int = 1000, seed: int = 0) -> dict:
    """Recall@k of a ``VectorIndex`` against exact search, with queries sampled from ``vectors``.

    Returns ``{"recall@k": ..., "qps": ..., "n_queries": ...}``; QPS is measured on the same
    queries (one batch: throughput, not latency).
    """
    rng = np.random.default_rng(seed)
    n = len(vectors)
    q = vectors[np.sort(rng.choice(n, size=min(sample, n), replace=False))]
    k = min(k, n)
    truth = index.ids[exact_neighbors(vectors, q, k, index.params["metric"])]
    t0 = time.perf_counter()
    got, _ = index.search(q, k)
    secs = time.perf_counter() - t0
    return {
        f"recall@{k}": recall_at_k(got, truth),
        "qps": float(len(q) / max(secs, 1e-9)),
        "n_queries": int(len(q)),
    }
