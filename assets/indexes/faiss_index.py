"""A Faiss vector index with external int64 ids and a batch ``search -> (ids, scores)`` API.

``index_type="auto"`` lets :func:`~assets.indexes.faiss_tuning.plan_index` choose from the data
(exact, HNSW, IVF-Flat, IVF-SQ8 or IVF-PQ within a memory budget), and the search parameter is
tuned to a target recall@k against exact search. Search runs on a GPU when ``faiss`` was built
with GPU support and a device is visible (one set of GPU resources per process, batched
queries); the saved index is always the CPU form, so it loads anywhere.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import faiss
import numpy as np

from assets.indexes.faiss_tuning import (
    KMEANS_ITERATIONS,
    TRAIN_PER_LIST,
    exact_neighbors,
    exact_neighbors_excluding,
    measure_recall,
    plan_index,
    recall_at_k,
    search_knob,
    set_search_knob,
    split_queries,
    tune_search,
)
from resources.faiss_resource import gpu_available

log = logging.getLogger(__name__)

__all__ = ["VectorIndex", "exact_neighbors", "measure_recall", "gpu_resources"]
GPU_QUERY_BATCH = 65_536
ADD_BATCH = 262_144  # rows per add: the index is filled from the caller's matrix without a second copy
_GPU_RES = None


def gpu_resources():
    """The process's one ``faiss.StandardGpuResources`` (created on first use, then reused)."""
    global _GPU_RES
    if _GPU_RES is None:
        _GPU_RES = faiss.StandardGpuResources()
    return _GPU_RES


def index_bytes(index) -> int:
    """Bytes the index holds for its vectors and ids (codes + ids; graph links for HNSW)."""
    idx = faiss.downcast_index(index)
    try:
        ivf = faiss.extract_index_ivf(index)
        return int(ivf.ntotal) * (int(ivf.code_size) + 8) + int(ivf.nlist) * int(ivf.d) * 4
    except RuntimeError:
        pass
    if hasattr(idx, "hnsw"):
        return int(idx.ntotal) * (int(idx.d) * 4 + idx.hnsw.nb_neighbors(0) * 4 + 8)
    return int(index.ntotal) * int(getattr(idx, "code_size", index.d * 4))


class VectorIndex:
    """Faiss index plus the external ids of its rows.

    Parameters
    ----------
    index : faiss.Index
        A trained CPU index holding the vectors in id order.
    ids : ndarray of int64
        External id of row ``i``.
    params : dict
        How it was built (metric, index type, nprobe, build seconds, ...).
    """

    native_filters = False  # scalar filters are applied by the caller to over-fetched candidates

    def __init__(self, index, ids: np.ndarray, params: dict):
        self.index = index
        self.ids = np.asarray(ids, dtype=np.int64)
        self.params = params
        self._search_index = None
        # Made here, once: requests look ids up concurrently from a thread pool, and a lazily
        # built table was seen half-made by a second thread.
        self._order = np.argsort(self.ids, kind="stable")  # ids sorted once, for lookups
        self._sorted = self.ids[self._order]
        try:  # IVF indexes reconstruct through a direct map
            faiss.extract_index_ivf(self.index).make_direct_map()
        except RuntimeError:
            pass

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        metric: str = "ip",
        index_type: str = "auto",
        nprobe: int | None = None,
        use_gpu: str = "auto",
        seed: int = 0,
        target_recall: float = 0.99,
        recall_k: int = 10,
        tune_sample: int = 1000,
        memory_budget_mb: int = 8192,
        threads: int = 0,
    ) -> VectorIndex:
        """Build an index over ``vectors`` (float32, one row per id) and tune its search.

        Parameters
        ----------
        ids : ndarray of int64
        vectors : ndarray (n, dim)
            Used in place when already C-contiguous float32 (no copy beyond what the index stores).
        metric : {"ip", "l2"}
            ``ip`` on unit vectors is cosine.
        index_type : str
            ``auto`` (chosen from n, dim and ``memory_budget_mb``) or any Faiss factory string.
        nprobe : int, optional
            Fixes the search parameter (``nprobe`` / ``efSearch``) instead of tuning it.
        target_recall, recall_k, tune_sample :
            The tuner's goal: recall@``recall_k`` >= ``target_recall`` on ``tune_sample`` queries.
        use_gpu : {"auto", "always", "never"}
        threads : int
            CPU threads for Faiss (0: its default, all cores).
        """
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(ids):
            raise ValueError(f"vectors {x.shape} do not match {len(ids)} ids")
        if len(x) == 0:
            raise ValueError("cannot build an index over zero vectors")
        if threads > 0:
            faiss.omp_set_num_threads(threads)
        plan = plan_index(len(x), x.shape[1], memory_budget_mb << 20)
        factory = plan.factory if index_type == "auto" else index_type
        mt = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        t0 = time.perf_counter()
        index = faiss.index_factory(x.shape[1], factory, mt)
        if not index.is_trained:
            try:
                ivf = faiss.extract_index_ivf(index)
                ivf.cp.niter = KMEANS_ITERATIONS
                n_train = min(len(x), TRAIN_PER_LIST * int(ivf.nlist))
            except RuntimeError:
                n_train = min(len(x), 100_000)
            index.train(x[np.sort(np.random.default_rng(seed).choice(len(x), n_train, replace=False))])
        held = np.zeros(len(x), bool)
        if nprobe is None and search_knob(index)[0] is not None:
            # Tune and report on rows the index does not hold yet: a query that is indexed is
            # found through itself (graph links, its own list), so it flatters the recall that
            # unseen queries get. They are added once the search parameter is chosen.
            tune_pos, report_pos = split_queries(len(x), tune_sample, seed)
            held[tune_pos] = held[report_pos] = True
        order = np.concatenate([np.flatnonzero(~held), np.flatnonzero(held)])
        for a in range(0, len(x), ADD_BATCH):
            keep = np.flatnonzero(~held[a : a + ADD_BATCH])
            index.add(x[a + keep] if len(keep) < min(ADD_BATCH, len(x) - a) else x[a : a + ADD_BATCH])
        build_s = time.perf_counter() - t0
        heldout = None
        if nprobe is not None:
            set_search_knob(index, nprobe)
            tuning = {"param": search_knob(index)[0], "value": nprobe, "recall": None, "tune_seconds": 0.0}
        elif not held.any():
            tuning = tune_search(index, x, k=recall_k, target=target_recall, metric=metric)
        else:
            k = min(recall_k, int((~held).sum()))
            kept = order[: int((~held).sum())]  # index position -> row of x, for the rows added so far
            truth = exact_neighbors_excluding(x, x[tune_pos], k, held, metric)
            tuning = tune_search(
                index,
                x,
                k=k,
                target=target_recall,
                metric=metric,
                queries=x[tune_pos],
                truth=truth,
                rows=kept,
            )
            pos = index.search(x[report_pos], k)[1]
            found = np.where(pos >= 0, kept[np.clip(pos, 0, None)], -1)
            heldout = recall_at_k(found, exact_neighbors_excluding(x, x[report_pos], k, held, metric))
            for a in range(0, int(held.sum()), ADD_BATCH):
                index.add(x[order[len(kept) + a : len(kept) + a + ADD_BATCH]])
        params = {
            "metric": metric,
            "index_type": factory,
            "plan_reason": plan.reason if index_type == "auto" else "given",
            "search_param": tuning["param"],
            "search_value": tuning["value"],
            "nprobe": tuning["value"] if tuning["param"] == "nprobe" else None,
            "tuned_recall": tuning["recall"],
            "heldout_recall": heldout,
            "heldout_queries": int(len(report_pos)) if heldout is not None else 0,
            "tuned_recall_lower": tuning.get("recall_lower"),
            "target_recall": target_recall,
            "recall_k": recall_k,
            "tune_curve": tuning.get("curve", []),
            "tune_curve_lower": tuning.get("curve_lower", []),
            "dim": int(x.shape[1]),
            "n": int(len(x)),
            "build_seconds": round(build_s, 3),
            "tune_seconds": tuning["tune_seconds"],
            "index_bytes": index_bytes(index),
            "vector_bytes": int(x.nbytes),
            "use_gpu": use_gpu,
        }
        log.info(
            "faiss %s over %d x %d built in %.2fs (%s); %s=%s",
            factory,
            len(x),
            x.shape[1],
            build_s,
            params["plan_reason"],
            tuning["param"],
            tuning["value"],
        )
        return cls(index, np.asarray(ids, np.int64)[order], params)

    def _searcher(self):
        if self._search_index is None:
            want = self.params.get("use_gpu", "auto")
            if want == "always" and not gpu_available():
                raise RuntimeError("use_gpu='always' but no GPU faiss build or device is available")
            if want != "never" and gpu_available():
                self._search_index = faiss.index_cpu_to_gpu(gpu_resources(), 0, self.index)
                self.params["device"] = "gpu"
            else:
                self._search_index = self.index
                self.params["device"] = "cpu"
        return self._search_index

    @property
    def size(self) -> int:
        """Vectors held."""
        return len(self.ids)

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(held, row)`` per id, by binary search over the ids sorted once (a request must not
        pay a sort, or a scan, of the whole index)."""
        ids = np.asarray(ids, np.int64)
        at = np.clip(np.searchsorted(self._sorted, ids), 0, max(len(self._sorted) - 1, 0))
        held = self._sorted[at] == ids if len(self._sorted) else np.zeros(len(ids), bool)
        return held, self._order[at]

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``ids`` are held."""
        return self._positions(ids)[0]

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(held, vectors)``: which of ``ids`` are held, and the stored vectors of those."""
        held = self.contains(ids)
        return held, self.reconstruct(np.asarray(ids, np.int64)[held])

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k neighbours of each query: ``(ids, scores)``, both ``(n_queries, k)``.

        Missing results (fewer than k vectors) have id ``-1``.
        """
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = int(min(k, len(self.ids)))
        searcher = self._searcher()
        if self.params.get("device") == "gpu" and len(q) > GPU_QUERY_BATCH:
            parts = [
                searcher.search(q[a : a + GPU_QUERY_BATCH], k) for a in range(0, len(q), GPU_QUERY_BATCH)
            ]
            scores, pos = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        else:
            scores, pos = searcher.search(q, k)
        ids = np.where(pos >= 0, self.ids[np.clip(pos, 0, None)], -1)
        return ids, scores

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of the given ids (exact for Flat/IVF-Flat, approximate for SQ8)."""
        ids = np.asarray(ids, np.int64)
        held, pos = self._positions(ids)
        if not held.all():
            raise KeyError(f"not in the index: {ids[~held][:10].tolist()}")
        return (
            np.stack([self.index.reconstruct(int(p)) for p in pos])
            if len(pos)
            else np.zeros((0, self.params["dim"]), np.float32)
        )

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(path / "index.faiss"))
        np.save(path / "ids.npy", self.ids, allow_pickle=False)
        (path / "params.json").write_text(json.dumps(self.params, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> VectorIndex:
        path = Path(path)
        params = json.loads((path / "params.json").read_text())
        return cls(
            faiss.read_index(str(path / "index.faiss")), np.load(path / "ids.npy", allow_pickle=False), params
        )
