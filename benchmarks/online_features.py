"""Online feature reads under load: ``POST /v1/features`` for one entity and for a batch of 10,
with 10 concurrent clients (Feast's published benchmark's concurrency), against gunicorn with 2
uvicorn workers over the embedded store, beside ``GET /healthz`` on the same server (the HTTP
floor: the baseline the ratios are to).

For each size a store is written with that many entities × 40 window features of yesterday and
today's events for a tenth of them (the real-time counts the endpoint also reads). wrk draws a
random entity per request (Debian's ``wrk``; 2 threads). Server and clients share the 2 cores.
Targets (the issue's): p99 < 5 ms for one entity, < 15 ms for a batch of 10.

    python -m benchmarks.online_features [--sizes 10000 100000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import write_result
from recstack import settings

PORT = 8766
N_FEATURES = 40
STORE_ENV = "RECSTACK_BENCH_FEATURE_STORE"
WRK = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(11)
request = function()
  local ids = {}
  for i = 1, %(batch)d do ids[i] = '"u' .. math.random(0, %(last)d) .. '"' end
  return wrk.format(nil, "/v1/features", nil, '{"entity_ids": [' .. table.concat(ids, ",") .. ']}')
end
"""


def app():
    """The gunicorn factory: the service over the benchmark's store only."""
    from resources.feature_store.embedded import EmbeddedStore
    from serving.app import create_app
    from serving.state import ServingState, StateHolder

    return create_app(
        StateHolder(lambda: ServingState()), api_key="", feature_store=EmbeddedStore(os.environ[STORE_ENV])
    )


def build_store(path: Path, n: int) -> dict:
    """``n`` entities' window features (yesterday) and today's events for a tenth of them."""
    from assets.features.layers import app_cells, build_dwd, table_specs
    from resources.feature_store.embedded import EmbeddedStore

    store = EmbeddedStore(path)
    for spec in table_specs().values():
        store.create_table(spec)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    cells = 0
    for lo in range(0, n, 20_000):
        ids = [f"u{i}" for i in range(lo, min(n, lo + 20_000))]
        table = pd.DataFrame(
            rng.poisson(3, (len(ids), N_FEATURES)).astype(float),
            columns=[f"f{j}_01_SUM_7d" for j in range(N_FEATURES)],
        )
        table.insert(0, "dim", "user")
        table.insert(0, "entity_id", ids)
        cells += store.put_cells("app_features", app_cells(table, date.today() - timedelta(days=1)))
    today = datetime.now(UTC).replace(hour=0, minute=30, second=0, microsecond=0)
    k = max(1, n // 10)
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(3 * k)],
            "entity_id": [f"u{i % k}" for i in range(3 * k)],
            "dim": "user",
            "feature": "LOGIN",
            "line": "01",
            "event_ts": [(today + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(3 * k)],
            "value": 1.0,
            "detail": "{}",
        }
    )
    cells += store.put_cells("dwd_events", build_dwd(events).cells)
    store.close()
    return {"cells": cells, "write_seconds": round(time.perf_counter() - t0, 1), "bytes": path.stat().st_size}


def _wrk(seconds: int, path: str | None, batch: int, last: int) -> dict:
    args = ["wrk", "-t2", "-c10", f"-d{seconds}s", "--latency"]
    if path is None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK % {"batch": batch, "last": last})
        args += ["-s", f.name, f"http://127.0.0.1:{PORT}"]
    else:
        args.append(f"http://127.0.0.1:{PORT}{path}")
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout

    def ms(text):
        v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": non2xx + sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)),
        "throughput_rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms(lat["50"]),
        "p99_ms": ms(lat["99"]),
    }


def serve_and_load(store: Path, n: int, seconds: int) -> dict:
    import httpx

    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            *("-k", "uvicorn_worker.UvicornWorker", "-w", "2", "-b", f"127.0.0.1:{PORT}"),
            *("--log-level", "warning", "benchmarks.online_features:app()"),
        ],
        env=settings.child_env(**{STORE_ENV: str(store)}),
        stderr=subprocess.DEVNULL,  # the access log: one line per request
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the service did not start")
            time.sleep(0.5)
        time.sleep(3)  # both workers up
        out = {
            "healthz": _wrk(seconds, "/healthz", 0, 0),
            "one_entity": _wrk(seconds, None, 1, n - 1),
            "batch_of_10": _wrk(seconds, None, 10, n - 1),
        }
    finally:
        server.terminate()
        server.wait(60)
    floor = out["healthz"]["p99_ms"]
    for case in ("one_entity", "batch_of_10"):
        out[case]["p99_vs_healthz"] = round(out[case]["p99_ms"] / floor, 2)
    out["targets"] = {
        "one_entity_p99_lt_5ms": out["one_entity"]["p99_ms"] < 5,
        "batch_of_10_p99_lt_15ms": out["batch_of_10"]["p99_ms"] < 15,
    }
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) == 0:
            raise SystemExit(f"port {PORT} is in use")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"store-{n}.sqlite"
            built = build_store(path, n)
            res = serve_and_load(path, n, args.seconds)
            runs.append({"entities": n, "features": N_FEATURES, **built, **res})
            print(f"  {n:,} entities: {res}", flush=True)
    if len(runs) > 1:
        a, b = runs[0], runs[-1]
        growth = {
            f"{case}_p99_growth": round(b[case]["p99_ms"] / a[case]["p99_ms"], 2)
            for case in ("one_entity", "batch_of_10")
        }
        growth["entities_growth"] = b["entities"] / a["entities"]
    else:
        growth = {}
    path = write_result(
        "online_features",
        {
            "clients": 10,
            "server": "gunicorn, 2 uvicorn workers",
            "runs": runs,
            "growth": growth,
        },
    )
    print(f"written {path}")
    return {"runs": runs, "growth": growth}


if __name__ == "__main__":
    main()
