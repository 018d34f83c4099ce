"""ALS as the data grows: the Spark data plane (Parquet read by Spark) against today's pandas path.

For each size, synthetic implicit interactions (users in communities preferring their community's
items, Zipf popularity) are written as a Parquet dataset in chunks of 1M rows, never held whole
by this process. Then, each in a fresh process:

- ``spark``: ``train_als("spark", path)`` on ``local[2]``: Spark reads the Parquet, ranks ids and
  writes the factors from its executors; the driver reads back the factor matrices only;
- ``pandas``: the previous path: the dataset read into one pandas frame on the driver and handed
  to Spark (``createDataFrame``), run where it still fits.

Recorded per run: wall seconds, the Python driver's peak RSS, the JVM's peak RSS (``VmHWM`` of
the gateway JVM, read before it stops), and NDCG@10 on 2,000 sampled users' held-out items
against popularity. Targets: driver peak RSS at the largest size <= 1.5x its value at the
smallest; time per pair at the largest <= 1.5x that at the middle size; quality within 2 % of
the pandas path where both run.

    python -m benchmarks.scale_als [--sizes 1000000 5000000 20000000] [--pandas-max 5000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import write_result

CHUNK = 1_000_000
PAIRS_PER_USER = 50
N_ITEMS = 20_000
COMMUNITIES = 20
AFFINITY = 0.8
SAMPLE_USERS = 2_000
RANK, ITERATIONS = 16, 8


def _pairs(rng, users: np.ndarray) -> np.ndarray:
    """An item per user: from the user's community's items with ``AFFINITY``, else by popularity."""
    per = N_ITEMS // COMMUNITIES
    own = (users % COMMUNITIES) * per + np.minimum(rng.zipf(1.3, len(users)) - 1, per - 1)
    popular = np.minimum(rng.zipf(1.2, len(users)) - 1, N_ITEMS - 1)
    return np.where(rng.random(len(users)) < AFFINITY, own, popular).astype(np.int64)


def write_dataset(pairs: int, folder: Path, seed: int = 0) -> dict:
    """``pairs`` interactions as Parquet files of ``CHUNK`` rows, plus one held-out item for each
    of ``SAMPLE_USERS`` users (from the same distribution, never in training)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_users = max(1000, pairs // PAIRS_PER_USER)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for c, a in enumerate(range(0, pairs, CHUNK)):
        n = min(CHUNK, pairs - a)
        users = rng.integers(0, n_users, n).astype(np.int64) * 7 + 3  # sparse int64 ids
        items = _pairs(rng, (users - 3) // 7) * 13 + 5
        t = pa.table({"user_id": users, "item_id": items, "confidence": np.ones(n, np.float32)})
        pq.write_table(t, folder / f"part-{c:05d}.parquet")
    sample = np.sort(rng.choice(n_users, SAMPLE_USERS, replace=False)).astype(np.int64)
    held = np.stack([sample * 7 + 3, _pairs(rng, sample) * 13 + 5], axis=1)
    np.save(folder.parent / "heldout.npy", held)
    return {"users": n_users, "items": N_ITEMS}


def _jvm_peak_mib() -> float:
    """Peak RSS of this process's JVM children (``VmHWM``), MiB."""
    peak = 0.0
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) != me or b"java" not in (d / "cmdline").read_bytes():
                continue
            for line in (d / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, IndexError, ValueError):
            continue
    return peak


def _ndcg(model, folder: Path) -> dict:
    """NDCG@10 of one held-out item per sampled user, the user's training items excluded, for the
    model and for popularity."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    held = np.load(folder.parent / "heldout.npy")
    data = ds.dataset(str(folder))
    seen = data.to_table(filter=pc.field("user_id").isin(held[:, 0])).to_pandas()
    counts = (
        data.to_table(columns=["item_id"]).group_by("item_id").aggregate([("item_id", "count")]).to_pandas()
    )
    pop = counts.set_index("item_id")["item_id_count"].reindex(model.item_ids).fillna(0).to_numpy()
    rows = np.searchsorted(model.user_ids, held[:, 0])
    ok = (rows < len(model.user_ids)) & (
        model.user_ids[np.minimum(rows, len(model.user_ids) - 1)] == held[:, 0]
    )
    out = {}
    for name, scores in (
        ("als", model.user_factors[rows[ok]] @ model.item_factors.T),
        ("popularity", np.tile(pop.astype(np.float32), (int(ok.sum()), 1))),
    ):
        col = {int(i): j for j, i in enumerate(model.item_ids)}
        for r, u in enumerate(held[ok, 0]):
            mine = seen.loc[seen["user_id"] == u, "item_id"].to_numpy()
            scores[r, [col[int(i)] for i in mine if int(i) in col]] = -np.inf
        target = np.array([col.get(int(i), -1) for i in held[ok, 1]])
        target_score = scores[np.arange(len(target)), np.maximum(target, 0)]
        rank = (scores > target_score[:, None]).sum(axis=1)
        gain = np.where((target >= 0) & (rank < 10) & np.isfinite(target_score), 1 / np.log2(rank + 2), 0.0)
        out[name] = round(float(gain.mean()), 4)
    return out


def run_one(path: str, pairs: int, folder: str) -> dict:
    """One training run (in a fresh process): ``path`` is ``spark`` or ``pandas``."""
    from assets.embeddings.als import AlsParams, train_als
    from resources.spark import SparkResource

    spark = SparkResource(master="local[2]", driver_memory="6g", shuffle_partitions=8).get_session()
    spark.range(10).count()  # the JVM is up before the clock starts
    params = AlsParams(rank=RANK, iterations=ITERATIONS, reg=0.05, alpha=10.0)
    t0 = time.perf_counter()
    if path == "spark":
        model = train_als("spark", folder, params, spark=spark)
    else:
        import pandas as pd

        frame = pd.read_parquet(folder)
        model = train_als("spark", frame, params, spark=spark)
        del frame
    seconds = time.perf_counter() - t0
    jvm = _jvm_peak_mib()
    quality = _ndcg(model, Path(folder))
    spark.stop()
    return {
        "path": path,
        "pairs": pairs,
        "seconds": round(seconds, 1),
        "seconds_per_million_pairs": round(seconds / (pairs / 1e6), 2),
        "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "jvm_peak_rss_mib": round(jvm, 1),
        "ndcg@10": quality["als"],
        "popularity_ndcg@10": quality["popularity"],
        "users": int(len(model.user_ids)),
        "items": int(len(model.item_ids)),
    }


def _isolated(path: str, pairs: int, folder: Path) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(run_one, (path, pairs, str(folder)))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    ap.add_argument("--pandas-max", type=int, default=20_000_000, help="largest size run on the pandas path")
    args = ap.parse_args(argv)
    runs = []
    root = Path(tempfile.mkdtemp(prefix="recstack-scale-als-"))
    try:
        for pairs in args.sizes:
            folder = root / str(pairs) / "interactions"
            t0 = time.perf_counter()
            shape = write_dataset(pairs, folder)
            print(f"{pairs:,} pairs written in {time.perf_counter() - t0:.0f}s ({shape})", flush=True)
            for path in ("spark", "pandas"):
                if path == "pandas" and pairs > args.pandas_max:
                    continue
                r = _isolated(path, pairs, folder)
                runs.append(r)
                print(r, flush=True)
            shutil.rmtree(root / str(pairs), ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res = {"workload": _workload(), "runs": runs, **_verdict(runs, args.sizes)}
    print(f"written {write_result('scale_als', res)}")
    return res


def _workload() -> dict:
    return {
        "engine": "Spark MLlib ALS on local[2], driver memory 6g",
        "rank": RANK,
        "iterations": ITERATIONS,
        "pairs_per_user": PAIRS_PER_USER,
        "items": N_ITEMS,
        "communities": COMMUNITIES,
        "evaluation": f"NDCG@10 of one held-out item for {SAMPLE_USERS:,} sampled users, seen items excluded",
    }


def _verdict(runs: list[dict], sizes: list[int]) -> dict:
    spark = {r["pairs"]: r for r in runs if r["path"] == "spark"}
    pandas = {r["pairs"]: r for r in runs if r["path"] == "pandas"}
    lo, hi = min(spark), max(spark)
    mid = sorted(spark)[len(spark) // 2 - (len(spark) % 2 == 0)] if len(spark) > 2 else lo
    ratios = {
        "driver_rss_largest_over_smallest": round(
            spark[hi]["driver_peak_rss_mib"] / spark[lo]["driver_peak_rss_mib"], 3
        ),
        "time_per_pair_largest_over_middle": round(
            spark[hi]["seconds_per_million_pairs"] / spark[mid]["seconds_per_million_pairs"], 3
        ),
        "ndcg_spark_over_pandas": {
            str(p): round(spark[p]["ndcg@10"] / pandas[p]["ndcg@10"], 4) for p in pandas if p in spark
        },
        "ndcg_over_popularity": {
            str(p): round(r["ndcg@10"] / r["popularity_ndcg@10"], 2) for p, r in spark.items()
        },
        "driver_rss_pandas_over_spark": {
            str(p): round(pandas[p]["driver_peak_rss_mib"] / spark[p]["driver_peak_rss_mib"], 2)
            for p in pandas
            if p in spark
        },
    }
    return {
        "ratios": ratios,
        "targets": {
            "driver_rss_largest_le_1.5x_smallest": ratios["driver_rss_largest_over_smallest"] <= 1.5,
            "time_per_pair_largest_le_1.5x_middle": ratios["time_per_pair_largest_over_middle"] <= 1.5,
            "quality_within_2pct_of_pandas": all(
                abs(v - 1) <= 0.02 for v in ratios["ndcg_spark_over_pandas"].values()
            ),
        },
        "largest_completed": {
            "spark": max(spark),
            "pandas": max(pandas) if pandas else None,
        },
    }


if __name__ == "__main__":
    main()
