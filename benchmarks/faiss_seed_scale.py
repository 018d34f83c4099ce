"""Faiss at lookalike seed scale: the tuned index against plain Faiss and exact search, one run.

Workload (the shape of the published lookalike practice): 4,474,857 users × 10-d unit vectors,
clustered (2,000 centres); 78,525 seed users as queries, top-5. Each path runs in its own
process, so its peak RSS is its own:

- ``exact``: brute force (``faiss.knn``) on 2,000 of the queries, extrapolated; it is also the
  truth for recall@5;
- ``tuned``: ``VectorIndex.build(index_type="auto")`` (index chosen from the data, search
  parameter tuned to recall@5 >= 0.99 on 500 sampled users) + search of every query;
- ``baseline``: plain Faiss ``IVF4096,Flat`` trained on 262,144 points, ``nprobe`` 16.

    python -m benchmarks.faiss_seed_scale [--users N] [--queries Q]   # results/faiss_seed_scale.json
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import isolated, write_result

TRUTH_QUERIES = 2_000


def vectors(n: int, d: int = 10, centres: int = 2_000, noise: float = 0.35, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors, generated in chunks (the matrix is the only full-size allocation)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d)).astype(np.float32)
    x = np.empty((n, d), np.float32)
    for a in range(0, n, 1 << 20):
        b = min(n, a + (1 << 20))
        x[a:b] = c[rng.integers(0, centres, b - a)] + noise * rng.normal(size=(b - a, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def queries(n: int, q: int) -> np.ndarray:
    return np.sort(np.random.default_rng(1).choice(n, q, replace=False))


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def run_exact(n: int, q: int, truth_path: str) -> dict:
    import faiss

    x = vectors(n)
    qi = queries(n, q)[:TRUTH_QUERIES]
    t0 = time.perf_counter()
    _, pos = faiss.knn(x[qi], x, 5, metric=faiss.METRIC_INNER_PRODUCT)
    secs = time.perf_counter() - t0
    np.save(truth_path, pos)
    return {
        "queries_timed": len(qi),
        "seconds_timed": round(secs, 2),
        "search_seconds_extrapolated": round(secs * q / len(qi), 1),
    }


def _recall(found: np.ndarray, truth_path: str) -> float:
    from assets.indexes.faiss_tuning import recall_at_k

    truth = np.load(truth_path)
    return recall_at_k(found[: len(truth)], truth)


def run_tuned(n: int, q: int, truth_path: str) -> dict:
    from assets.indexes.faiss_index import VectorIndex

    x = vectors(n)
    qi = queries(n, q)
    before = _rss_mib()
    t0 = time.perf_counter()
    idx = VectorIndex.build(
        np.arange(n, dtype=np.int64), x, index_type="auto", target_recall=0.99, recall_k=5, tune_sample=500
    )
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    found, _ = idx.search(x[qi], 5)
    search = time.perf_counter() - t0
    p = idx.params
    return {
        "index_type": p["index_type"],
        "plan": p["plan_reason"],
        p["search_param"]: p["search_value"],
        "tuning_recall@5": round(p["tuned_recall"], 4),
        "tune_curve": p["tune_curve"],
        "build_seconds": round(build - p["tune_seconds"], 2),
        "tune_seconds": p["tune_seconds"],
        "build_and_tune_seconds": round(build, 2),
        "search_seconds": round(search, 2),
        "total_seconds": round(build + search, 2),
        "recall@5": round(_recall(found, truth_path), 4),
        "rss_before_build_mib": round(before, 1),
        "index_mib": round(p["index_bytes"] / 2**20, 1),
    }


def run_baseline(n: int, q: int, truth_path: str) -> dict:
    import faiss

    x = vectors(n)
    qi = queries(n, q)
    before = _rss_mib()
    t0 = time.perf_counter()
    index = faiss.index_factory(x.shape[1], "IVF4096,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(x[np.random.default_rng(0).choice(n, 262_144, replace=False)])
    index.add(x)
    build = time.perf_counter() - t0
    faiss.extract_index_ivf(index).nprobe = 16
    t0 = time.perf_counter()
    _, found = index.search(x[qi], 5)
    search = time.perf_counter() - t0
    return {
        "index_type": "IVF4096,Flat",
        "nprobe": 16,
        "train_points": 262_144,
        "build_seconds": round(build, 2),
        "search_seconds": round(search, 2),
        "total_seconds": round(build + search, 2),
        "recall@5": round(_recall(found, truth_path), 4),
        "rss_before_build_mib": round(before, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=4_474_857)
    ap.add_argument("--queries", type=int, default=78_525)
    args = ap.parse_args(argv)
    n, q = args.users, args.queries
    matrix_mib = n * 10 * 4 / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        truth = str(Path(tmp) / "truth.npy")
        res = {"workload": {"users": n, "dim": 10, "queries": q, "k": 5, "matrix_mib": round(matrix_mib, 1)}}
        res["exact"] = isolated(run_exact, n, q, truth)
        res["tuned"] = isolated(run_tuned, n, q, truth)
        res["baseline"] = isolated(run_baseline, n, q, truth)
    t, b = res["tuned"], res["baseline"]
    for part in (t, b):
        part["peak_over_data_mib"] = round(part["peak_rss_mib"] - part["rss_before_build_mib"], 1)
    res["ratios"] = {
        "tuned_time_vs_baseline": round(t["total_seconds"] / b["total_seconds"], 3),
        "tuned_speedup_vs_exact_search": round(
            res["exact"]["search_seconds_extrapolated"] / t["search_seconds"], 1
        ),
        "tuned_peak_over_data_vs_matrix": round(t["peak_over_data_mib"] / matrix_mib, 2),
        "tuned_peak_rss_vs_matrix": round(t["peak_rss_mib"] / matrix_mib, 2),
    }
    res["targets"] = {
        "total_le_30s": t["total_seconds"] <= 30,
        "recall@5_ge_0.99": t["recall@5"] >= 0.99,
        "time_le_1.2x_baseline": res["ratios"]["tuned_time_vs_baseline"] <= 1.2,
        "memory_le_3x_matrix": res["ratios"]["tuned_peak_over_data_vs_matrix"] <= 3,
    }
    path = write_result("faiss_seed_scale", res)
    print(
        f"exact ≈{res['exact']['search_seconds_extrapolated']}s | tuned {t['index_type']} "
        f"{t['total_seconds']}s "
        f"recall@5 {t['recall@5']} | baseline {b['total_seconds']}s recall@5 {b['recall@5']} | "
        f"ratio {res['ratios']['tuned_time_vs_baseline']} | targets {res['targets']} -> {path}"
    )
    return res


if __name__ == "__main__":
    main()
