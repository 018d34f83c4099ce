"""A Faiss vector index with external int64 ids and a batch ``search -> (ids, scores)`` API.

``index_type="auto"`` picks exact search (``Flat``) for small sets and an inverted-file index
(``IVF{nlist},Flat``, or ``IVF{nlist},SQ8`` past a few million vectors) for large ones. Search runs
on a GPU automatically when ``faiss`` was built with GPU support and a device is visible; the
saved index is always the CPU form, so it loads anywhere.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import faiss
import numpy as np

from resources.faiss_resource import gpu_available

log = logging.getLogger(__name__)

EXACT_MAX = 50_000
SQ8_MIN = 2_000_000


def choose_index_type(n: int) -> str:
    """The factory string ``auto`` resolves to for ``n`` vectors."""
    if n <= EXACT_MAX:
        return "Flat"
    nlist = int(min(65536, max(64, 2 ** round(math.log2(4 * math.sqrt(n))))))
    return f"IVF{nlist},SQ8" if n >= SQ8_MIN else f"IVF{nlist},Flat"


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

    def __init__(self, index, ids: np.ndarray, params: dict):
        self.index = index
        self.ids = np.asarray(ids, dtype=np.int64)
        self.params = params
        self._search_index = None

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        metric: str = "ip",
        index_type: str = "auto",
        nprobe: int = 16,
        use_gpu: str = "auto",
        seed: int = 0,
    ) -> VectorIndex:
        """Build an index over ``vectors`` (float32, one row per id).

        ``metric`` is ``"ip"`` (inner product; pass unit vectors for cosine) or ``"l2"``;
        ``use_gpu`` is ``"auto"``, ``"always"`` or ``"never"``.
        """
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(ids):
            raise ValueError(f"vectors {x.shape} do not match {len(ids)} ids")
        if len(x) == 0:
            raise ValueError("cannot build an index over zero vectors")
        factory = choose_index_type(len(x)) if index_type == "auto" else index_type
        mt = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        t0 = time.perf_counter()
        index = faiss.index_factory(x.shape[1], factory, mt)
        if not index.is_trained:
            n_train = min(len(x), 256 * getattr(faiss.extract_index_ivf(index), "nlist", 1))
            sample = x[np.random.default_rng(seed).choice(len(x), n_train, replace=False)]
            index.train(sample)
        index.add(x)
        if factory.startswith("IVF"):
            faiss.extract_index_ivf(index).nprobe = nprobe
        params = {"metric": metric, "index_type": factory, "nprobe": nprobe if factory.startswith("IVF") else None,
                  "dim": int(x.shape[1]), "n": int(len(x)), "build_seconds": round(time.perf_counter() - t0, 3),
                  "use_gpu": use_gpu}
        log.info("faiss %s over %d x %d built in %.2fs", factory, len(x), x.shape[1], params["build_seconds"])
        return cls(index, ids, params)

    def _searcher(self):
        if self._search_index is None:
            want = self.params.get("use_gpu", "auto")
            if want == "always" and not gpu_available():
                raise RuntimeError("use_gpu='always' but no GPU faiss build or device is available")
            if want != "never" and gpu_available():
                self._gpu_res = faiss.StandardGpuResources()
                self._search_index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self.index)
                self.params["device"] = "gpu"
            else:
                self._search_index = self.index
                self.params["device"] = "cpu"
        return self._search_index

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k neighbours of each query: ``(ids, scores)``, both ``(n_queries, k)``.

        Missing results (fewer than k vectors) have id ``-1``.
        """
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = int(min(k, len(self.ids)))
        scores, pos = self._searcher().search(q, k)
        ids = np.where(pos >= 0, self.ids[np.clip(pos, 0, None)], -1)
        return ids, scores

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of the given ids (exact for Flat/IVF-Flat, approximate for SQ8)."""
        pos = np.searchsorted(self.ids, ids) if np.all(np.diff(self.ids) > 0) else None
        if pos is None:
            lookup = {int(v): i for i, v in enumerate(self.ids)}
            pos = np.array([lookup[int(i)] for i in ids])
        if hasattr(self.index, "make_direct_map"):
            try:
                faiss.extract_index_ivf(self.index).make_direct_map()
            except RuntimeError:
                pass
        return np.stack([self.index.reconstruct(int(p)) for p in pos]) if len(pos) else np.zeros((0, self.params["dim"]), np.float32)

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
        return cls(faiss.read_index(str(path / "index.faiss")), np.load(path / "ids.npy", allow_pickle=False), params)


def exact_neighbors(base: np.ndarray, queries: np.ndarray, k: int, metric: str = "ip") -> np.ndarray:
    """Row positions of the exact top-k neighbours (brute force), for recall measurement."""
    mt = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    flat = faiss.IndexFlat(base.shape[1], mt)
    flat.add(np.ascontiguousarray(base, dtype=np.float32))
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)[1]


def measure_recall(index: VectorIndex, vectors: np.ndarray, k: int = 10, sample: int = 1000, seed: int = 0) -> dict:
    """Recall@k of ``index`` against exact search, with queries sampled from ``vectors``.

    Returns ``{"recall@k": ..., "qps": ..., "n_queries": ...}``; QPS is measured on the same
    queries (single batch, so it is throughput, not latency).
    """
    rng = np.random.default_rng(seed)
    n = len(vectors)
    qi = rng.choice(n, size=min(sample, n), replace=False)
    q = vectors[qi]
    k = min(k, n)
    truth = index.ids[exact_neighbors(vectors, q, k, index.params["metric"])]
    t0 = time.perf_counter()
    got, _ = index.search(q, k)
    secs = time.perf_counter() - t0
    inter = [np.intersect1d(a, b).size for a, b in zip(got, truth)]
    return {f"recall@{k}": float(np.mean(inter) / k), "qps": float(len(q) / max(secs, 1e-9)), "n_queries": int(len(q))}
