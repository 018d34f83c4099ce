"""Window engine and embedded store benchmark (issue #3 workload).

20,000 entities × 8 base features × 2 lines × 180 days at ~10% daily density, all 10 functions ×
6 windows = 19.2M derived values. Measured in one run, each part in its own process:

(a) the numpy kernel alone (``window_stats``) and with the wide-table assembly
    (``compute_window_table``, what the asset runs);
(b) the Spark path (``mapInPandas`` over entity shards) on ``local[2]``;
(c) a straightforward pandas groupby baseline on a 1/20 slice (rates are per derived value);
plus peak RSS of each, and embedded-store write and scan throughput.

Run: ``make bench`` or ``python -m benchmarks.window_engine [--entities N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd

from assets.features.warehouse_config import load_warehouse_config
from benchmarks.common import isolated, write_result
from recstack import settings

# The packaged warehouse layout's MID features and lines (8 features × 2 lines).
_LAYOUT = load_warehouse_config()
FEATURES, LINES = _LAYOUT.mid_features, _LAYOUT.lines
WINDOWS = (3, 7, 15, 30, 90, 180)  # the practice's windows: 6 × 10 functions per series
DAYS, DENSITY = 180, 0.10


def workload(entities: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_series = entities * len(FEATURES) * len(LINES)
    mask = rng.random((n_series, DAYS)) < DENSITY
    s, off = np.nonzero(mask)
    ent, rest = np.divmod(s, len(FEATURES) * len(LINES))
    f, l = np.divmod(rest, len(LINES))
    ids = np.array([f"e{i:06d}" for i in range(entities)])
    long = pd.DataFrame(
        {
            "entity_id": ids[ent],
            "mid_feature": np.array(FEATURES)[f],
            "line": np.array(LINES)[l],
            "offset": off.astype(np.int64),
            "value": rng.integers(0, 60, s.size).astype(np.float64),
        }
    )
    return long, pd.DataFrame({"entity_id": ids, "dim": "user"})


def entries():
    from assets.features.dictionary import Entry
    from assets.features.window_kernel import FUNCS

    return [Entry("user", i, f, FUNCS, WINDOWS, f, "sum") for i, f in enumerate(FEATURES)]


def n_values(entities: int) -> int:
    return entities * len(FEATURES) * len(LINES) * 10 * 6


def run_kernel(entities):
    from assets.features.window_kernel import window_stats

    long, _ = workload(entities)
    g = (
        pd.factorize(long["entity_id"])[0] * len(FEATURES)
        + pd.Index(FEATURES).get_indexer(long["mid_feature"])
    ) * 2 + (long["line"] == "02").to_numpy()
    t0 = time.perf_counter()
    window_stats(g, long["offset"].to_numpy(), long["value"].to_numpy(), entities * len(FEATURES) * 2)
    return {"seconds": time.perf_counter() - t0, "cells": len(long)}


def run_table(entities):
    from assets.features.layers import compute_window_table

    long, ents = workload(entities)
    t0 = time.perf_counter()
    t = compute_window_table(long, ents, entries(), LINES)
    return {"seconds": time.perf_counter() - t0, "shape": list(t.shape)}


def run_spark(entities):
    settings.configure_process()
    from assets.features.spark_windows import window_table_spark
    from resources.spark import SparkResource

    spark = SparkResource(master="local[2]", driver_memory="8g", shuffle_partitions=8).get_session()
    warm, warm_ents = workload(50, seed=1)  # start the Python workers and JIT once, untimed
    window_table_spark(spark, warm, warm_ents, entries(), LINES, shards=2)
    long, ents = workload(entities)
    t0 = time.perf_counter()
    t = window_table_spark(spark, long, ents, entries(), LINES, shards=16)
    secs = time.perf_counter() - t0
    spark.stop()
    return {"seconds": secs, "shape": list(t.shape)}


def run_pandas(entities):
    long, _ = workload(entities)
    keys = ["entity_id", "mid_feature", "line"]
    t0 = time.perf_counter()
    parts = []
    for w in (3, 7, 15, 30, 90, 180):
        sub = long[long["offset"] < w].sort_values("offset")
        g = sub.groupby(keys)["value"]
        a = g.agg(["count", "sum", "max", "min", "mean", "median"])
        a["std"] = g.std(ddof=0)
        a["range"] = a["max"] - a["min"]
        a["mode"] = g.agg(lambda s: s.mode().min())
        a["maxpartition"] = sub.loc[g.idxmax(), keys + ["offset"]].set_index(keys)["offset"]
        parts.append(a.add_suffix(f"_{w}d"))
    pd.concat(parts, axis=1)
    return {"seconds": time.perf_counter() - t0}


def run_store(cells: int):
    from resources.feature_store.base import FamilySpec, TableSpec
    from resources.feature_store.embedded import EmbeddedStore

    with tempfile.TemporaryDirectory() as d:
        s = EmbeddedStore(f"{d}/bench.sqlite")
        s.create_table(TableSpec("mid", (FamilySpec("m", 1, 540 * 86400),)))
        now = int(time.time() * 1000)
        rows = [
            (b"%02x%08d" % (i % 256, i // 40), b"m:call_cnt_01_%08d" % (i % 40), b"%d.0" % (i % 97), now)
            for i in range(cells)
        ]
        t0 = time.perf_counter()
        for k in range(0, cells, 100_000):
            s.put_cells("mid", rows[k : k + 100_000])
        w = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = sum(len(c) for _, c in s.scan("mid"))
        r = time.perf_counter() - t0
    return {"write_cells_per_s": cells / w, "scan_cells_per_s": n / r, "cells": cells}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entities", type=int, default=20_000)
    ap.add_argument("--baseline-fraction", type=float, default=0.05)
    ap.add_argument("--store-cells", type=int, default=2_000_000)
    args = ap.parse_args(argv)
    e = args.entities
    eb = max(1, int(e * args.baseline_fraction))
    print(
        f"workload: {e} entities x {len(FEATURES)} features x {len(LINES)} lines x {DAYS} days @ "
        f"{DENSITY:.0%}; "
        f"{n_values(e) / 1e6:.1f}M derived values"
    )
    res = {}
    for name, fn, ents in (
        ("kernel", run_kernel, e),
        ("table", run_table, e),
        ("spark_local2", run_spark, e),
        ("pandas_baseline", run_pandas, eb),
    ):
        out = isolated(fn, ents)
        out["entities"] = ents
        out["derived_values_per_s"] = n_values(ents) / out["seconds"]
        res[name] = out
        print(
            f"  {name:<16} {out['seconds']:7.2f}s  {out['derived_values_per_s'] / 1e6:6.2f}M values/s  peak "
            f"{out['peak_rss_mib']:6.0f} MiB"
        )
    res["store"] = isolated(run_store, args.store_cells)
    print(
        f"  store: write {res['store']['write_cells_per_s']:,.0f} cells/s, scan "
        f"{res['store']['scan_cells_per_s']:,.0f} cells/s"
    )
    k = res["kernel"]["derived_values_per_s"]
    ratios = {
        "kernel_vs_pandas": k / res["pandas_baseline"]["derived_values_per_s"],
        "table_vs_pandas": res["table"]["derived_values_per_s"]
        / res["pandas_baseline"]["derived_values_per_s"],
        "spark_slowdown_vs_kernel": k / res["spark_local2"]["derived_values_per_s"],
        "spark_slowdown_vs_table": res["table"]["derived_values_per_s"]
        / res["spark_local2"]["derived_values_per_s"],
    }
    targets = {
        "kernel >= 2M values/s": k >= 2e6,
        "kernel >= 20x pandas": ratios["kernel_vs_pandas"] >= 20,
        "spark within 4x of kernel": ratios["spark_slowdown_vs_kernel"] <= 4,
        "peak memory < 4 GiB (kernel, table)": max(
            res["kernel"]["peak_rss_mib"], res["table"]["peak_rss_mib"]
        )
        < 4096,
        "store >= 200k writes/s": res["store"]["write_cells_per_s"] >= 2e5,
        "store >= 500k cells/s scanned": res["store"]["scan_cells_per_s"] >= 5e5,
    }
    for k_, v in ratios.items():
        print(f"  {k_}: {v:.1f}x")
    for t, ok in targets.items():
        print(f"  [{'met' if ok else 'MISSED'}] {t}")
    path = write_result(
        "window_engine",
        {
            "workload": {
                "entities": e,
                "features": len(FEATURES),
                "lines": len(LINES),
                "days": DAYS,
                "density": DENSITY,
                "derived_values": n_values(e),
            },
            "results": res,
            "ratios": ratios,
            "targets": targets,
        },
    )
    print(f"written {path}")
    return res


if __name__ == "__main__":
    main()
