"""Load on the recall API, by serve backend and size: 32 connections for a fixed time against
gunicorn with 2 uvicorn workers (the production command), per endpoint, beside the same
similar-entity query straight through the index in-process (the baseline).

For each size (100k and 1M vectors by default) the world of :mod:`benchmarks.serve_world` is
built once; then it is served from in-process Faiss (each worker loads the indexes) and from a
Milvus standalone server (the workers query the aliases). Endpoints: ``/v1/similar`` by entity
id (k=10), ``/v1/lookalike`` I2I2U from one random item (audience 100), ``/v1/kb/search`` hybrid
(k=5). The clients are ``wrk`` (Debian's package; 2 threads, a Lua script drawing each request)
or, where wrk is missing, asyncio + httpx. Server, clients and Milvus share this machine's 2
cores, so the numbers include the load generator's own cost. Each worker's RSS is read after
the load.

    python -m benchmarks.serve_load [--sizes 100000 1000000] [--backends faiss milvus] [--seconds 15]
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
from benchmarks.serve_world import N_ITEMS, build_world, load_world, publish_world
from recstack import settings

PORT = 8765
ENDPOINTS = ("similar", "lookalike", "kb", "kb_rerank", "recommend", "feedback")


def _vectors(n: int, d: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(200, d)).astype(np.float32)
    x = c[rng.integers(0, 200, n)] + 0.3 * rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


async def _client_loop(
    client, endpoint: str, n_ids: int, deadline: float, lat: list, errors: list, seed: int
):
    rng = np.random.default_rng(seed)
    while time.perf_counter() < deadline:
        path, body = _request(endpoint, rng, n_ids)
        t0 = time.perf_counter()
        try:
            r = await client.post(path, json=body)
            ok = r.status_code == 200
        except Exception:  # noqa: BLE001 - counted as an error
            ok = False
        (lat if ok else errors).append(time.perf_counter() - t0)


QUERIES: list[str] = []


def _request(endpoint: str, rng, n_ids: int) -> tuple[str, dict]:
    if endpoint == "similar":
        return "/v1/similar", {"entity_ids": [int(rng.integers(n_ids))], "k": 10}
    if endpoint == "lookalike":
        return "/v1/lookalike", {
            "seed_item_ids": [int(rng.integers(N_ITEMS))],
            "size": 100,
            "strategy": "i2i2u",
        }
    if endpoint == "recommend":
        return "/v1/recommend", {"user_id": int(rng.integers(n_ids)), "k": 10}
    if endpoint == "feedback":
        return "/v1/feedback", {
            "events": [{"request_id": f"{int(rng.integers(2**62)):032x}", "item_id": "7", "event": "click"}]
        }
    # kb: the first stage (the default pipeline where validation keeps no reranker); kb_rerank: with
    # the second stage on, its cost the difference
    body = {"query": QUERIES[int(rng.integers(len(QUERIES)))], "k": 5, "mode": "hybrid"}
    return "/v1/kb/search", {**body, "rerank": endpoint == "kb_rerank"}


async def _load(clients: int, seconds: float, n_ids: int, endpoint: str) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", limits=limits, timeout=30) as client:
        lat: list[float] = []
        errors: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(
            *[_client_loop(client, endpoint, n_ids, t0 + seconds, lat, errors, s) for s in range(clients)]
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


def in_process(world: Path, n: int, seconds: float) -> dict:
    """The baseline: the similar-entity query through the Faiss index directly, one thread."""
    from assets.retrieval.similar import similar

    st = load_world(world, "faiss")
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
queries = {%(queries)s}
request = function()
  local e = "%(endpoint)s"
  if e == "similar" then
    return wrk.format(nil, "/v1/similar", nil,
      '{"entity_ids": [' .. math.random(0, %(last)d) .. '], "k": 10}')
  elseif e == "lookalike" then
    return wrk.format(nil, "/v1/lookalike", nil,
      '{"seed_item_ids": [' .. math.random(0, %(last_item)d) .. '], "size": 100, "strategy": "i2i2u"}')
  elseif e == "recommend" then
    return wrk.format(nil, "/v1/recommend", nil,
      '{"user_id": ' .. math.random(0, %(last)d) .. ', "k": 10}')
  elseif e == "feedback" then
    return wrk.format(nil, "/v1/feedback", nil,
      '{"events": [{"request_id": "'
      .. string.format("%%016x%%016x", math.random(0, 2^31), math.random(0, 2^31))
      .. '", "item_id": "7", "event": "click"}]}')
  end
  local rerank = "false"
  if e == "kb_rerank" then rerank = "true" end
  return wrk.format(nil, "/v1/kb/search", nil,
    '{"query": ' .. queries[math.random(1, #queries)] .. ', "k": 5, "mode": "hybrid", "rerank": '
    .. rerank .. '}')
end
"""


def _ms(text: str) -> float:
    import re

    v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _wrk(clients: int, seconds: float, n_ids: int, endpoint: str) -> dict:
    import json
    import re
    import shutil
    import tempfile

    lua_queries = ", ".join("[==[" + json.dumps(q, ensure_ascii=False) + "]==]" for q in QUERIES)
    script = WRK_SCRIPT % {
        "queries": lua_queries,
        "endpoint": endpoint,
        "last": n_ids - 1,
        "last_item": N_ITEMS - 1,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
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
        "p50_ms": _ms(lat["50"]) if "50" in lat else None,  # absent when nothing succeeded
        "p99_ms": _ms(lat["99"]) if "99" in lat else None,
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


def _batches() -> tuple[float, float]:
    """(batched calls, requests in them) so far, summed over the workers by ``/metrics``."""
    import re

    import httpx

    text = httpx.get(f"http://127.0.0.1:{PORT}/metrics", timeout=10).text
    got = dict(re.findall(r"^recstack_batch_size_(count|sum)\{[^}]*\} (\S+)$", text, re.M))
    return float(got.get("count", 0)), float(got.get("sum", 0))


def _worker_rss_mib(server: subprocess.Popen) -> list[float]:
    """VmRSS of each gunicorn worker (the master's children), MiB."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) != server.pid:
                continue
            rss = next(x for x in (d / "status").read_text().splitlines() if x.startswith("VmRSS:"))
            out.append(round(int(rss.split()[1]) / 1024, 1))
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return sorted(out)


def serve(
    world: Path, n: int, backend: str, milvus_uri: str, clients: int, seconds: float, endpoints=ENDPOINTS
) -> dict:
    """gunicorn over ``world`` on ``backend``; every endpoint under load; the workers' RSS."""
    import shutil

    metrics_dir = world / "prometheus"  # as in production: /metrics sums every worker's samples
    env = settings.child_env(
        RECSTACK_BENCH_WORLD=str(world),
        RECSTACK_SERVE_BACKEND=backend,
        RECSTACK_MILVUS_URI=milvus_uri,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            str(Path(__file__).parents[1] / "serving" / "gunicorn_conf.py"),
            "-k",
            "uvicorn_worker.UvicornWorker",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{PORT}",
            "--timeout",
            "300",
            "--log-level",
            "warning",
            "benchmarks.serve_world:app()",
        ],
        env=env,
    )
    out: dict = {}
    try:
        _wait_ready(server)
        time.sleep(15 if backend == "milvus" else 30)  # the other worker loads its state too
        for endpoint in endpoints:
            before = _batches()
            out[endpoint] = (
                _wrk(clients, seconds, n, endpoint)
                if shutil.which("wrk")
                else {"generator": "httpx asyncio", **asyncio.run(_load(clients, seconds, n, endpoint))}
            )
            after = _batches()
            if after[0] > before[0]:  # batched endpoints: mean requests per batched call
                out[endpoint]["mean_batch"] = round((after[1] - before[1]) / (after[0] - before[0]), 2)
            print(f"  {backend} {n:,} {endpoint}: {out[endpoint]}", flush=True)
        out["worker_rss_mib"] = _worker_rss_mib(server)
    finally:
        server.terminate()
        server.wait(60)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--backends", nargs="+", default=["faiss", "milvus"], choices=["faiss", "milvus"])
    ap.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS), choices=list(ENDPOINTS))
    ap.add_argument(
        "--update",
        action="store_true",
        help="add these endpoints' figures to the runs of the existing results file instead of replacing it",
    )
    args = ap.parse_args(argv)
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) == 0:
            raise SystemExit(f"port {PORT} is in use")
    import contextlib
    import json
    import shutil
    import tempfile

    from tests.support.servers import milvus_server

    root = Path(tempfile.mkdtemp(prefix="recstack-serve-load-"))
    runs, worlds = [], {}
    try:
        with contextlib.ExitStack() as stack:
            uri = stack.enter_context(milvus_server(root / "milvus")) if "milvus" in args.backends else ""
            for n in args.sizes:
                world = root / f"world-{n}"
                t0 = time.perf_counter()
                worlds[n] = {
                    "build": build_world(world, n),
                    "build_seconds": round(time.perf_counter() - t0, 1),
                }
                QUERIES[:] = json.loads((world / "kb_queries.json").read_text())
                if "milvus" in args.backends:
                    worlds[n]["milvus"] = publish_world(world, uri)
                print(f"world {n:,}: {worlds[n]}", flush=True)
                base = in_process(world, n, min(args.seconds, 10))
                for backend in args.backends:
                    res = serve(world, n, backend, uri, args.clients, args.seconds, args.endpoints)
                    runs.append({"backend": backend, "vectors": n, **res, "in_process_baseline": base})
                shutil.rmtree(world, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res = {
        "workload": {
            "sizes": args.sizes,
            "clients": args.clients,
            "seconds": args.seconds,
            "endpoints": {
                "similar": "POST /v1/similar by entity id, k=10, 64-d entity vectors",
                "lookalike": "POST /v1/lookalike i2i2u from one random item, size 100, 32-d vectors",
                "kb": "POST /v1/kb/search hybrid, k=5, the synthetic 48-entry KB, first stage only, the "
                "query encoded by a default (scratch, 128-d) two-tower; concurrent searches batched "
                "(serving/batching.py)",
                "kb_rerank": "the same with the second stage on (LambdaRank over the fused top 20 with a "
                "second encoder's features: one more query encoding)",
                "recommend": "POST /v1/recommend, k=10, ALS + item2vec fused (RRF), 5 seen items per user "
                "removed, impressions logged",
                "feedback": "POST /v1/feedback, one click per request, appended to the event log",
            },
            "server": "gunicorn, 2 uvicorn workers",
        },
        "worlds": worlds,
        "runs": runs,
    }
    if args.update:
        res = _merged(res, args.endpoints)
    res.update(_verdict(res["runs"]))
    path = write_result("serve_load", res)
    print(f"written {path}")
    return res


def _merged(new: dict, endpoints: list[str]) -> dict:
    """The existing results file with ``endpoints``' figures of ``new`` added to its matching runs."""
    import json

    from benchmarks.common import RESULTS

    old = json.loads((RESULTS / "serve_load.json").read_text())
    by = {(r["backend"], r["vectors"]): r for r in old["runs"]}
    for r in new["runs"]:
        target = by.setdefault(
            (r["backend"], r["vectors"]), {"backend": r["backend"], "vectors": r["vectors"]}
        )
        target.update({e: r[e] for e in endpoints})
        target[f"worker_rss_mib_{'_'.join(endpoints)}"] = r["worker_rss_mib"]
    old["runs"] = list(by.values())
    old["workload"]["endpoints"].update(new["workload"]["endpoints"])
    sizes = sorted({r["vectors"] for r in new["runs"]})
    when = time.strftime("%Y-%m-%d")
    old.setdefault("updated", {}).update({e: f"{when}, sizes {sizes}" for e in endpoints})
    return old


def _verdict(runs: list[dict]) -> dict:
    by = {(r["backend"], r["vectors"]): r for r in runs}
    sizes = sorted({r["vectors"] for r in runs})
    ratios, targets = {}, {}
    for r in runs:
        key = f"{r['backend']}@{r['vectors']}"
        served = [e for e in ENDPOINTS if e in r]
        targets[f"{key}_zero_errors"] = all(r[e]["errors"] == 0 for e in served)
        targets[f"{key}_p99_under_50ms"] = all((r[e]["p99_ms"] or 1e9) < 50 for e in served)
        if "similar" in r:
            ratios[f"{key}_similar_p50_over_in_process"] = round(
                r["similar"]["p50_ms"] / r["in_process_baseline"]["p50_ms"], 1
            )
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for backend in ("faiss", "milvus"):
            if (backend, lo) in by and (backend, hi) in by:
                ratios[f"{backend}_worker_rss_{hi}_over_{lo}"] = round(
                    max(by[(backend, hi)]["worker_rss_mib"]) / max(by[(backend, lo)]["worker_rss_mib"]), 3
                )
        if ("milvus", lo) in by and ("milvus", hi) in by:
            targets["milvus_worker_rss_largest_le_1.2x_smallest"] = (
                ratios[f"milvus_worker_rss_{hi}_over_{lo}"] <= 1.2
            )
    return {"ratios": ratios, "targets": targets}


if __name__ == "__main__":
    main()
