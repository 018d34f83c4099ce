"""Load on the recall API: 32 concurrent clients on loopback for 30 s, against a 100,000-vector
index, k=10, beside the same query straight through the index in-process (the baseline).

The server is the production command, gunicorn with 2 uvicorn workers, serving ``/v1/similar``
by entity id. The clients are ``wrk`` (Debian's package; 2 threads, 32 connections, a Lua script
drawing a random id per request) or, where wrk is missing, asyncio + httpx. Server and clients
share this machine's 2 cores, so the numbers include the load generator's own cost.

    python -m benchmarks.serve_load [--clients 32] [--seconds 30] [--vectors 100000]  # serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import write_result
from recstack import settings

PORT = 8765


def _vectors(n: int, d: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(200, d)).astype(np.float32)
    x = c[rng.integers(0, 200, n)] + 0.3 * rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def load_state(n: int | None = None):
    """A serving state whose entity index holds ``n`` vectors (default ``RECSTACK_BENCH_VECTORS``,
    which the benchmark sets for the server it starts)."""
    import pandas as pd

    from assets.indexes.faiss_index import VectorIndex
    from serving.state import Capability, ServingState

    n = n or int(settings.env("RECSTACK_BENCH_VECTORS", "100000"))
    ids = np.arange(n, dtype=np.int64)
    index = VectorIndex.build(ids, _vectors(n), tune_sample=500)
    profiles = pd.DataFrame({"entity_id": ids})
    cap = Capability("bench-entities", "1", "champion", "bench")
    return ServingState(
        entity_index=index, entity_profiles=profiles, encode_entities=None, versions={"entities": cap}
    )


def app():
    """``uvicorn --factory benchmarks.serve_load:app``."""
    from serving.app import create_app
    from serving.state import StateHolder

    return create_app(StateHolder(load_state), api_key="")


async def _client_loop(client, n_ids: int, deadline: float, lat: list, errors: list, seed: int):
    rng = np.random.default_rng(seed)
    while time.perf_counter() < deadline:
        body = {"entity_ids": [int(rng.integers(n_ids))], "k": 10}
        t0 = time.perf_counter()
        try:
            r = await client.post("/v1/similar", json=body)
            ok = r.status_code == 200 and len(r.json()["results"][0]["ids"]) == 10
        except Exception:  # noqa: BLE001 - counted as an error
            ok = False
        (lat if ok else errors).append(time.perf_counter() - t0)


async def _load(clients: int, seconds: float, n_ids: int) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", limits=limits, timeout=30) as client:
        lat: list[float] = []
        errors: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(
            *[_client_loop(client, n_ids, t0 + seconds, lat, errors, s) for s in range(clients)]
        )
        wall = time.perf_counter() - t0
    a = np.array(lat) * 1000
    return {
        "requests": len(lat),
        "errors": len(errors),
        "throughput_rps": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
    }


def in_process(n: int, seconds: float) -> dict:
    """The baseline: the same query through the index directly, one thread."""
    from assets.retrieval.similar import similar

    st = load_state(n)
    rng = np.random.default_rng(1)
    lat = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        i = np.array([int(rng.integers(n))])
        t0 = time.perf_counter()
        similar(st.entity_index, st.entity_index.reconstruct(i), 10, exclude=i)
        lat.append(time.perf_counter() - t0)
    a = np.array(lat) * 1000
    return {
        "requests": len(lat),
        "throughput_rps": round(len(lat) / seconds, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "index_type": st.entity_index.params["index_type"],
    }


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(7)
request = function()
  return wrk.format(nil, "/v1/similar", nil, '{"entity_ids": [' .. math.random(0, %d) .. '], "k": 10}')
end
"""


def _ms(text: str) -> float:
    import re

    v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _wrk(clients: int, seconds: float, n_ids: int) -> dict:
    import re
    import shutil
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (n_ids - 1))
    out = subprocess.run(
        [
            shutil.which("wrk"),
            "-t2",
            f"-c{clients}",
            f"-d{int(seconds)}s",
            "--latency",
            "-s",
            f.name,
            f"http://127.0.0.1:{PORT}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {
        "generator": "wrk 2 threads",
        "requests": total,
        "errors": non2xx + sock,
        "throughput_rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(lat["50"]),
        "p99_ms": _ms(lat["99"]),
        "max_ms": _ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1)),
    }


def _wait_ready(proc, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError("server not ready in time")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--vectors", type=int, default=100_000)
    args = ap.parse_args(argv)
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) == 0:
            raise SystemExit(f"port {PORT} is in use")
    import shutil

    env = settings.child_env(RECSTACK_BENCH_VECTORS=str(args.vectors))
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-k",
            "uvicorn_worker.UvicornWorker",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
            "benchmarks.serve_load:app()",
        ],
        env=env,
    )
    try:
        _wait_ready(server)
        time.sleep(20)  # readyz answered by one worker: give the other time to build its index too
        api = (
            _wrk(args.clients, args.seconds, args.vectors)
            if shutil.which("wrk")
            else {
                "generator": "httpx asyncio",
                **asyncio.run(_load(args.clients, args.seconds, args.vectors)),
            }
        )
    finally:
        server.terminate()
        server.wait(30)
    base = in_process(args.vectors, min(args.seconds, 10))
    res = {
        "workload": {
            "vectors": args.vectors,
            "dim": 64,
            "k": 10,
            "clients": args.clients,
            "seconds": args.seconds,
            "endpoint": "POST /v1/similar (by entity id)",
            "server": "gunicorn, 2 uvicorn workers",
        },
        "api": api,
        "in_process_baseline": base,
        "ratios": {
            "api_p50_over_in_process": round(api["p50_ms"] / base["p50_ms"], 1),
            "api_throughput_over_in_process": round(api["throughput_rps"] / base["throughput_rps"], 3),
        },
        "targets": {"zero_errors": api["errors"] == 0, "p99_under_50ms": api["p99_ms"] < 50},
    }
    path = write_result("serve_load", res)
    print(
        f"API {api['throughput_rps']} req/s p50 {api['p50_ms']} ms p99 {api['p99_ms']} ms errors "
        f"{api['errors']} | "
        f"in-process {base['throughput_rps']} q/s p50 {base['p50_ms']} ms -> {path}"
    )
    return res


if __name__ == "__main__":
    main()
