"""Helpers shared by benchmarks: isolated runs with peak memory, and result files."""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results")


def _child(fn, args, q):
    t0 = time.perf_counter()
    out = fn(*args)
    out = dict(out or {})
    out.setdefault("seconds", time.perf_counter() - t0)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put(out)


def isolated(fn, *args) -> dict:
    """Run ``fn(*args)`` in a fresh process; returns its dict plus ``peak_rss_mib`` of that process."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def machine() -> dict:
    import os

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps(
            {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), **result},
            indent=2,
            default=float,
        )
    )
    return path


def run_sets(name: str, sets, shared: Path, bench_set, extra: dict | None = None) -> dict:
    """``bench_set(set_name)`` for each set present under ``shared`` (others are skipped, and said
    so); writes ``results/<name>.json`` with ``extra`` beside the results."""
    res = {}
    for s in sets:
        if (shared / s).exists():
            res[s] = bench_set(s)
        else:
            print(f"  {s} skipped: {shared / s} not found")
    path = write_result(name, {"results": res, **(extra or {})})
    print(f"written {path}")
    return res
