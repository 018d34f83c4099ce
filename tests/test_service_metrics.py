"""The service's /metrics and access log, under gunicorn with two workers as in production: the
counters scraped after real requests match the requests sent, and every request has one JSON log
line carrying the request id its response carried."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recstack import settings

pytestmark = pytest.mark.serving
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    port, log = _free_port(), tmp / "stderr.log"
    env = settings.child_env(PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom"))
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                *("-c", str(REPO / "serving" / "gunicorn_conf.py")),
                *("-k", "uvicorn_worker.UvicornWorker", "-w", "2", "-b", f"127.0.0.1:{port}"),
                *("--timeout", "300", "--log-level", "warning"),
                "tests.support.metrics_app:app()",
            ],
            cwd=REPO,
            env=env,
            stderr=err,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 240
            ready = 0
            while ready < 6:  # both workers answer: several readies in a row
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not become ready: {log.read_text()[-3000:]}")
                try:
                    ready = ready + 1 if httpx.get(f"{url}/readyz", timeout=5).status_code == 200 else 0
                except httpx.HTTPError:
                    ready = 0
                time.sleep(0.5)
            yield url, log
        finally:
            proc.terminate()
            proc.wait(60)


def _samples(url: str) -> dict:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples: dict, name: str, **labels) -> float:
    """The sum over the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def test_metrics_count_the_requests_sent_and_each_has_a_json_log_line(service):
    url, log = service
    before = _samples(url)
    ok_ids = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for q in ["reset my card", "change address", "block card", "cancel my plan", "open account"]:
            r = c.post("/v1/kb/search", json={"query": q, "k": 3})
            assert r.status_code == 200
            assert r.headers["x-request-id"] == r.json()["request_id"]
            ok_ids.append(r.json()["request_id"])
        bad = [c.post("/v1/kb/search", json={"query": "", "k": 3}) for _ in range(3)]
        assert all(r.status_code == 422 for r in bad)
        traced = c.post(
            "/v1/kb/search", json={"query": "lost card", "k": 2}, headers={"X-Request-ID": "trace-7"}
        )
        assert traced.json()["request_id"] == "trace-7"
        for _ in range(4):
            assert c.get("/healthz").status_code == 200
    after = _samples(url)

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    kb = {"endpoint": "/v1/kb/search"}
    version = "recstack-kb:1"  # the fixture state's KB capability
    assert delta("recstack_requests_total", status="200", model_version=version, **kb) == 6
    assert delta("recstack_requests_total", status="422", **kb) == 3
    assert delta("recstack_request_errors_total", status="422", **kb) == 3
    assert delta("recstack_request_errors_total", status="200", **kb) == 0
    assert delta("recstack_request_duration_seconds_count", **kb) == 9
    assert delta("recstack_request_duration_seconds_bucket", le="+Inf", **kb) == 9
    assert delta("recstack_requests_total", endpoint="/healthz", status="200") == 4
    served = {
        dict(lab)["capability"]: dict(lab)["version"]
        for (n, lab), v in after.items()
        if n == "recstack_served_model_info" and v == 1
    }
    assert served == {"entities": "1", "lookalike": "1", "kb": "1", "recommend": "1"}
    # The access log: one JSON line per request, with the id the response carried.
    time.sleep(0.5)
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    by_id = {x["request_id"]: x for x in lines}
    for rid in [*ok_ids, "trace-7"]:
        assert by_id[rid]["endpoint"] == "/v1/kb/search" and by_id[rid]["status"] == 200
        assert by_id[rid]["models"] == {"recstack-kb": "1"} and by_id[rid]["latency_ms"] > 0
    assert sum(1 for x in lines if x["endpoint"] == "/v1/kb/search" and x["status"] == 422) == 3
    assert not [x for x in lines if x["endpoint"] == "/metrics"]  # scrapes are not logged
