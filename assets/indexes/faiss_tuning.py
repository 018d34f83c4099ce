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


def exact_neighbors_excluding(
    base: np.ndarray,
    queries: np.ndarray,
    k: int,
    exclude: np.ndarray,
    metric: str = "ip",
    chunk: int = 262_144,
) -> np.ndarray:
    """Exact top-k row positions of ``base`` for each query, leaving out the rows where ``exclude``
    is True; ``base`` is scanned in chunks, so no copy of the kept rows is ever made."""
    mt = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    q = np.ascontiguousarray(queries, dtype=np.float32)
    heap = faiss.ResultHeap(len(q), k, keep_max=metric == "ip")
    for a in range(0, len(base), chunk):
        keep = np.flatnonzero(~exclude[a : a + chunk])
        if not len(keep):
            continue
        d, p = faiss.knn(
            q, np.ascontiguousarray(base[a + keep], dtype=np.float32), min(k, len(keep)), metric=mt
        )
        heap.add_result(d, np.where(p >= 0, (a + keep)[np.clip(p, 0, None)], -1))
    heap.finalize()
    return heap.I


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


def split_queries(n: int, sample: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint samples of row positions: one the tuner sees, one it never sees.

    A seeded permutation of ``range(n)``: its first ``sample`` positions tune, the next ``sample``
    report. When ``n < 2 * sample`` the rows are halved between the two. Each is sorted.
    """
    size = min(sample, n // 2) if n < 2 * sample else sample
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:size]), np.sort(perm[size : 2 * size])


def drop_self(found: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` results of each row other than the query itself (``self_ids[row]``).

    A query drawn from the indexed vectors is its own nearest neighbour, found by every index:
    counting it would credit every query with one free hit (a tenth of recall@10).
    """
    keep = found != np.asarray(self_ids)[:, None]
    # Stable: move the self-match to the end of its row and cut at k.
    order = np.argsort(~keep, axis=1, kind="stable")
    return np.take_along_axis(found, order, axis=1)[:, :k]


def _per_query_recall(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    k = truth.shape[1]
    return ((found[:, :, None] == truth[:, None, :]).any(axis=1) & (truth >= 0)).sum(axis=1) / k


def tune_search(
    index,
    base: np.ndarray,
    k: int = 10,
    target: float = 0.99,
    sample: int = 1000,
    metric: str = "ip",
    seed: int = 0,
    queries: np.ndarray | None = None,
    margin_z: float = 2.0,
    truth: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> dict:
    """Set the smallest search parameter whose recall@k holds ``target`` with a margin.

    Parameters
    ----------
    index : faiss.Index
        A built CPU index over ``base`` (rows in the same order).
    base : ndarray (n, dim)
        The indexed vectors, for exact search.
    k, target : int, float
        Recall@k against exact search that the parameter must reach.
    sample : int
        Without ``queries``: the tuning half of :func:`split_queries` (seeded), indexed rows
        whose own match is removed from both the results and the truth (:func:`drop_self`).
    queries : ndarray, optional
        Held-out queries from the caller (not rows of ``base``): used as they are.
    truth, rows : ndarray, optional
        With ``queries``: their exact top-k as row positions of ``base``, and the row of ``base``
        that each index position holds (an index that holds only some rows of ``base`` yet).
    margin_z : float
        A value passes when its mean recall minus ``margin_z`` standard errors (over the
        queries) reaches ``target``: the target must hold on queries the tuner did not see,
        not only on average over these.

    Returns
    -------
    dict
        ``param``, ``value``, ``recall`` (mean on the tuning queries), ``recall_lower`` (the
        margin's bound), ``curve`` ([value, mean recall] tried), ``curve_lower`` (their bounds),
        ``target``, ``n_queries``, ``self_matches_removed``, ``tune_seconds``. For exact
        indexes ``param`` is None and recall 1.0.
    """
    t0 = time.perf_counter()
    name, current = search_knob(index)
    self_pos = None
    if queries is None:
        self_pos = split_queries(len(base), sample, seed)[0]
        queries = base[self_pos]
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
    k = max(1, min(k, len(base) - (self_pos is not None)))
    k_search = k + (self_pos is not None)
    if truth is None:
        truth = exact_neighbors(base, queries, k_search, metric)
    if self_pos is not None:
        truth = drop_self(truth, self_pos, k)
    upper = int(faiss.extract_index_ivf(index).nlist) if name == "nprobe" else 4096
    lower = 1 if name == "nprobe" else k
    curve: dict[int, tuple[float, float]] = {}

    def rec(v: int) -> tuple[float, float]:
        if v not in curve:
            set_search_knob(index, v)
            found = index.search(queries, k_search)[1]
            if rows is not None:
                found = np.where(found >= 0, rows[np.clip(found, 0, None)], -1)
            per = _per_query_recall(drop_self(found, self_pos, k) if self_pos is not None else found, truth)
            se = float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else 0.0
            curve[v] = (float(per.mean()), float(per.mean()) - margin_z * se)
        return curve[v]

    def ok(v: int) -> bool:
        return rec(v)[1] >= target

    v = lower
    while v < upper and not ok(v):  # doubling: recall grows with the parameter
        v = min(upper, v * 2)
    lo, hi = max(lower, v // 2), v
    if ok(hi):
        while hi - lo > 1:  # then the smallest passing value between the last failure and it
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
        best = hi if not ok(lo) else lo
    else:
        best = hi  # the target is out of reach: the most thorough setting
    set_search_knob(index, best)
    log.info(
        "tuned %s=%d: recall@%d %.4f (lower bound %.4f, target %.2f) in %.1fs",
        name,
        best,
        k,
        curve[best][0],
        curve[best][1],
        target,
        time.perf_counter() - t0,
    )
    return {
        "param": name,
        "value": int(best),
        "recall": curve[best][0],
        "recall_lower": curve[best][1],
        "curve": sorted((v, r) for v, (r, _) in curve.items()),
        "curve_lower": sorted((v, lo) for v, (_, lo) in curve.items()),
        "target": target,
        "n_queries": int(len(queries)),
        "self_matches_removed": self_pos is not None,
        "tune_seconds": round(time.perf_counter() - t0, 3),
        "previous": current,
    }


def measure_recall(
    index, ids: np.ndarray, vectors: np.ndarray, k: int = 10, sample: int = 1000, seed: int = 0
) -> dict:
    """Recall@k of a ``VectorIndex`` against exact search on queries its tuner never saw.

    ``ids`` name the rows of ``vectors`` (the index may hold them in another order).
    The queries are the reporting half of :func:`split_queries` (same ``seed`` as the tuner's),
    indexed rows whose own match is removed from results and truth. Returns
    ``{"recall@k": ..., "qps": ..., "n_queries": ...}``; QPS is measured on the same queries (one
    batch: throughput, not latency).
    """
    n = len(vectors)
    pos = split_queries(n, sample, seed)[1]
    q = vectors[pos]
    k = max(1, min(k, n - 1))
    ids = np.asarray(ids, np.int64)
    self_ids = ids[pos]
    truth = drop_self(ids[exact_neighbors(vectors, q, k + 1, index.params["metric"])], self_ids, k)
    t0 = time.perf_counter()
    got, _ = index.search(q, k + 1)
    secs = time.perf_counter() - t0
    return {
        f"recall@{k}": recall_at_k(drop_self(got, self_ids, k), truth),
        "qps": float(len(q) / max(secs, 1e-9)),
        "n_queries": int(len(q)),
    }
