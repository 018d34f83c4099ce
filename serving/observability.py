"""What the recall service tells the people running it: Prometheus metrics and one JSON log line
per request.

- ``recstack_requests_total{endpoint, method, status, model_version}``, the latency histogram
  ``recstack_request_duration_seconds{endpoint, model_version}``, errors
  ``recstack_request_errors_total{endpoint, status}`` (4xx and 5xx) and the versions served,
  ``recstack_served_model_info{capability, model, version, alias}`` (1 while served).
- Under gunicorn, each worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``
  sums them (prometheus-client's multiprocess mode; ``serving/gunicorn_conf.py`` clears the folder
  at start and marks a dead worker's files). Without the variable, one process's registry.
- ``recstack.access`` logs one JSON object per request: its ``request_id`` (the one the response
  body and the ``X-Request-ID`` header carry, and feedback names), endpoint, status, latency and
  the model versions that answered.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import time
import uuid

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

ACCESS_LOG = "recstack.access"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter(
    "recstack_requests_total", "Requests answered", ["endpoint", "method", "status", "model_version"]
)
ERRORS = Counter("recstack_request_errors_total", "Requests answered with 4xx or 5xx", ["endpoint", "status"])
LATENCY = Histogram(
    "recstack_request_duration_seconds",
    "Time to answer a request",
    ["endpoint", "model_version"],
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "recstack_batch_size",
    "Requests answered by one batched call (see serving.batching)",
    ["endpoint"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
SERVED = Gauge(
    "recstack_served_model_info",
    "1 for each model version a capability serves",
    ["capability", "model", "version", "alias"],
    multiprocess_mode="max",
)

# The request being answered: a dict the handler (possibly in a worker thread, which gets a copy
# of the context holding the same dict) fills with the versions it used.
_current: contextvars.ContextVar[dict | None] = contextvars.ContextVar("recstack_request", default=None)


def request_id() -> str:
    """The current request's id (a fresh one outside a request)."""
    ctx = _current.get()
    return ctx["request_id"] if ctx else uuid.uuid4().hex


def record_versions(models: dict[str, str]) -> None:
    """Note the ``model -> version`` that answered the current request."""
    ctx = _current.get()
    if ctx is not None:
        ctx["models"].update(models)


def set_served(versions: dict) -> None:
    """Publish the served versions (``capability -> Capability``) as ``recstack_served_model_info``:
    1 for each served label set, 0 for the ones no longer served."""
    current = {(cap, v.model_name, v.model_version, v.alias) for cap, v in versions.items()}
    for labels in set(_served_before) - current:
        SERVED.labels(*labels).set(0)
    for labels in current:
        SERVED.labels(*labels).set(1)
    _served_before.clear()
    _served_before.update(dict.fromkeys(current))


_served_before: dict = {}


def metrics_payload() -> tuple[bytes, str]:
    """The Prometheus exposition of every worker (multiprocess mode) or of this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware: a request id, the metrics and the access log line of every HTTP request."""

    def __init__(self, app):
        self.app = app
        self.log = logging.getLogger(ACCESS_LOG)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        ctx = {"request_id": rid, "models": {}}
        token = _current.set(ctx)
        status = {"code": 500}
        t0 = time.perf_counter()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
            self._observe(scope, ctx, status["code"], time.perf_counter() - t0)

    def _observe(self, scope, ctx: dict, code: int, seconds: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"  # the template: bounded label values
        version = ",".join(f"{m}:{v}" for m, v in sorted(ctx["models"].items())) or "none"
        REQUESTS.labels(endpoint, scope.get("method", ""), str(code), version).inc()
        LATENCY.labels(endpoint, version).observe(seconds)
        if code >= 400:
            ERRORS.labels(endpoint, str(code)).inc()
        if endpoint != "/metrics":
            self.log.info(
                json.dumps(
                    {
                        "request_id": ctx["request_id"],
                        "method": scope.get("method"),
                        "endpoint": endpoint,
                        "path": scope.get("path"),
                        "status": code,
                        "latency_ms": round(seconds * 1000, 3),
                        "models": ctx["models"],
                    },
                    sort_keys=True,
                )
            )


def configure_access_log() -> None:
    """``recstack.access`` to stderr as bare JSON lines (once), not through uvicorn's formatter."""
    log = logging.getLogger(ACCESS_LOG)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
