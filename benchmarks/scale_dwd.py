"""A day's DWD cells as the day grows: the Spark SQL path against the single-node pandas path.

For each size, a synthetic day of raw CRM events (calls on phones with durations, a tenth of them
fractional; logins, posts and clicks on users; two lines; three detail strings; ~0.5 % of the
events redelivered) is written as Parquet in chunks of 1M rows. Then, each in a fresh process:

- ``spark``: ``dwd_cells_spark`` on ``local[2]`` reads the Parquet and writes the cells as Parquet
  from the executors; the driver then reads them back in batches of 100k, as the asset does
  before each store write (the store itself is left out: both paths would pay it alike);
- ``pandas``: ``build_dwd`` on the frame read whole, the cells a list of tuples in the driver.

Recorded per run: wall seconds, seconds per million events, the Python driver's peak RSS and the
JVM's, and the cell count (equal across paths). Targets: on Spark the driver's peak RSS at the
largest size <= 1.5x its value at the smallest; time per event at the largest <= 1.5x that at the
middle size.

    python -m benchmarks.scale_dwd [--sizes 1000000 4000000 12000000] [--pandas-max 12000000]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import write_result
from benchmarks.scale_als import _jvm_peak_mib

CHUNK = 1_000_000
DAY = "2026-11-27"
DETAILS = ['{"src":"crm"}', '{"src":"app","v":2}', '{"src":"web"}']


def write_day(events: int, folder: Path, seed: int = 0) -> None:
    """``events`` raw events of one day as Parquet parts (plus 0.5 % redeliveries)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_users = max(events // 20, 1000)
    feats = np.array(["call", "login", "post", "click"])
    day0 = np.datetime64(f"{DAY}T00:00:00", "s")
    for c, a in enumerate(range(0, events, CHUNK)):
        n = min(CHUNK, events - a)
        f = rng.choice(4, n, p=[0.4, 0.3, 0.1, 0.2])
        ent = rng.integers(0, n_users, n)
        is_call = f == 0
        value = np.where(is_call, rng.integers(5, 900, n).astype(np.float64), 1.0)
        value = np.where(is_call & (rng.random(n) < 0.1), value + 0.5, value)
        stamps = (day0 + rng.integers(0, 86_400, n).astype("timedelta64[s]")).astype(str)
        ids = pa.array(np.arange(a, a + n))
        t = pa.table(
            {
                "event_id": pc.binary_join_element_wise("e", pc.cast(ids, pa.string()), ""),
                "entity_type": np.where(is_call, "phone", "user"),
                "entity_id": pc.binary_join_element_wise(
                    pa.array(np.where(is_call, "p", "u")), pc.cast(pa.array(ent), pa.string()), ""
                ),
                "feature": feats[f],
                "line": np.where(rng.random(n) < 0.6, "01", "02"),
                "event_ts": pc.binary_join_element_wise(pa.array(stamps), "Z", ""),
                "value": value,
                "detail": np.array(DETAILS)[rng.integers(0, 3, n)],
            }
        )
        again = rng.random(n) < 0.005  # the same event delivered twice
        pq.write_table(pa.concat_tables([t, t.filter(pa.array(again))]), folder / f"part-{c:05d}.parquet")


def run_one(path: str, events: int, folder: str) -> dict:
    """One build (in a fresh process): ``path`` is ``spark`` or ``pandas``."""
    from resources.spark import SparkResource

    spark = None
    if path == "spark":
        spark = SparkResource(master="local[2]", driver_memory="6g", shuffle_partitions=8).get_session()
        spark.range(10).count()  # the JVM is up before the clock starts
    t0 = time.perf_counter()
    if path == "spark":
        from assets.features.spark_layers import dwd_cells_spark, iter_cells, write_cells

        out = f"{folder}-cells"
        cells, _ = dwd_cells_spark(spark, spark.read.parquet(folder))
        write_cells(cells, out)
        n = sum(len(b) for b in iter_cells(out, 100_000))
        shutil.rmtree(out, ignore_errors=True)
    else:
        import pandas as pd

        from assets.features.layers import build_dwd

        n = len(build_dwd(pd.read_parquet(folder)).cells)
    seconds = time.perf_counter() - t0
    jvm = _jvm_peak_mib() if spark else 0.0
    if spark:
        spark.stop()
    return {
        "path": path,
        "events": events,
        "cells": n,
        "seconds": round(seconds, 1),
        "seconds_per_million_events": round(seconds / (events / 1e6), 2),
        "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "jvm_peak_rss_mib": round(jvm, 1),
    }


def _isolated(path: str, events: int, folder: Path) -> dict:
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_one, (path, events, str(folder)))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 12_000_000])
    ap.add_argument("--pandas-max", type=int, default=12_000_000, help="largest size run on the pandas path")
    args = ap.parse_args(argv)
    runs = []
    root = Path(tempfile.mkdtemp(prefix="recstack-scale-dwd-"))
    try:
        for events in args.sizes:
            folder = root / str(events) / "raw_events"
            write_day(events, folder)
            for path in ("spark", "pandas"):
                if path == "pandas" and events > args.pandas_max:
                    continue
                r = _isolated(path, events, folder)
                runs.append(r)
                print(r, flush=True)
            shutil.rmtree(root / str(events), ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res = {"workload": _workload(), "runs": runs, **_verdict(runs)}
    print(f"written {write_result('scale_dwd', res)}")
    return res


def _workload() -> dict:
    return {
        "engine": "Spark SQL on local[2], driver memory 6g; pandas build_dwd in one process",
        "day": DAY,
        "event_mix": "calls 40 % (durations, 10 % fractional), logins 30 %, clicks 20 %, posts 10 %",
        "redelivered": "0.5 % of events",
        "store_writes": "not included (alike on both paths)",
    }


def _verdict(runs: list[dict]) -> dict:
    spark = {r["events"]: r for r in runs if r["path"] == "spark"}
    pandas = {r["events"]: r for r in runs if r["path"] == "pandas"}
    sizes = sorted(spark)
    lo, hi, mid = sizes[0], sizes[-1], sizes[len(sizes) // 2 - (len(sizes) % 2 == 0)]
    ratios = {
        "driver_rss_largest_over_smallest": round(
            spark[hi]["driver_peak_rss_mib"] / spark[lo]["driver_peak_rss_mib"], 3
        ),
        "time_per_event_largest_over_middle": round(
            spark[hi]["seconds_per_million_events"] / spark[mid]["seconds_per_million_events"], 3
        ),
        "seconds_pandas_over_spark": {
            str(e): round(pandas[e]["seconds"] / spark[e]["seconds"], 2) for e in pandas if e in spark
        },
        "driver_rss_pandas_over_spark": {
            str(e): round(pandas[e]["driver_peak_rss_mib"] / spark[e]["driver_peak_rss_mib"], 2)
            for e in pandas
            if e in spark
        },
        "same_cells": all(pandas[e]["cells"] == spark[e]["cells"] for e in pandas if e in spark),
    }
    return {
        "ratios": ratios,
        "targets": {
            "driver_rss_largest_le_1.5x_smallest": ratios["driver_rss_largest_over_smallest"] <= 1.5,
            "time_per_event_largest_le_1.5x_middle": ratios["time_per_event_largest_over_middle"] <= 1.5,
        },
    }


if __name__ == "__main__":
    main()
