"""Real servers for the tests, started on 127.0.0.1 and stopped with everything they spawned.

Each helper is a context manager that yields the server's address. Two outcomes are not a
server:

* :class:`NotInstalled`, decided *before* anything starts: the binary or package is not on this
  machine. Tests turn it into a skip with the reason (:func:`skip_not_installed`), except in CI,
  where ``make test`` installs every one of them and a missing one is a failure.
* :class:`ServerUnavailable`: it is installed and did not come up (exited, or missed its
  deadline). That is a regression and fails the test; it is never turned into a skip.

Logs go to the folder the caller gives, so a failing test points at them.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from recstack import settings


class ServerUnavailable(RuntimeError):
    """An installed server did not start; the message says why and where its log is."""


class NotInstalled(Exception):
    """The server's binary or package is not on this machine (checked before starting it)."""


def skip_not_installed(e: NotInstalled) -> None:
    """Skip with the reason, or fail in CI (``CI`` set), where ``make test`` installs every server."""
    import pytest

    if settings.env("CI").lower() in ("1", "true", "yes"):
        pytest.fail(f"{e} (CI installs it: this is a set-up failure)")
    pytest.skip(str(e))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _venv_exe(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).with_name(name))


def _wait(
    ready: Callable[[], bool], proc: subprocess.Popen | None, timeout: float, what: str, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not ready yet; the deadline decides
            pass
        if proc is not None and proc.poll() is not None:
            raise ServerUnavailable(f"{what} exited with {proc.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise ServerUnavailable(f"{what} not ready after {timeout:.0f} s; see {log}")
        time.sleep(0.5)


def http_ok(url: str) -> bool:
    return urllib.request.urlopen(url, timeout=2).status == 200


def _pids_mentioning(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (a temp folder only this server uses):
    finds children that moved to a session of their own."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def stop_process_tree(proc: subprocess.Popen, marker: str | None = None, grace: float = 30) -> None:
    """SIGTERM, then SIGKILL, the process group of ``proc`` and every process naming ``marker``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [proc.pid, *(_pids_mentioning(marker) if marker else [])]
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (proc.poll() is None or (marker and _pids_mentioning(marker))):
            time.sleep(0.3)
        if proc.poll() is not None and not (marker and _pids_mentioning(marker)):
            return


@contextmanager
def milvus_server(folder: Path) -> Iterator[str]:
    """The ``milvus`` package's standalone server (embedded etcd, local storage) on a free port.

    The port is passed explicitly: left to itself the launcher silently moves to the next port when
    19530 cannot be bound (as right after a previous server, while its connections sit in TIME_WAIT).
    """
    from resources.milvus import milvus_client, release

    exe = _venv_exe("milvus-server")
    if not Path(exe).exists():
        raise NotInstalled("the `milvus` package (milvus-server) is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "milvus.log"
    data = folder / "milvus-data"
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [exe, "--data", str(data), "--proxy-port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        uri = f"http://127.0.0.1:{port}"
        try:
            _wait(lambda: port_open(port), proc, 180, "milvus-server", log_path)
            # The proxy listens before the coordinators are ready.
            _wait(
                lambda: milvus_client(uri).list_collections() is not None,
                None,
                120,
                "milvus-server",
                log_path,
            )
            yield uri
        finally:
            release(uri)
            stop_process_tree(proc, str(data))


def _spark_workers_alive(ui_port: int) -> int:
    import json

    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as r:
        return int(json.loads(r.read())["aliveworkers"])


@contextmanager
def spark_standalone(folder: Path, workers: int = 2, cores: int = 1, memory: str = "1g") -> Iterator[str]:
    """A Spark standalone cluster from the ``pyspark`` package's own ``spark-class``: one master
    and ``workers`` workers on 127.0.0.1 (free ports), yielding the ``spark://`` master URL once
    every worker has registered."""
    try:
        import pyspark
    except ImportError as e:
        raise NotInstalled("pyspark is not installed") from e
    home = Path(pyspark.__file__).parent
    spark_class = home / "bin" / "spark-class"
    if not spark_class.exists() or not shutil.which("java"):
        raise NotInstalled("pyspark's bin/spark-class or a java runtime is missing")
    folder.mkdir(parents=True, exist_ok=True)
    marker = str(folder.absolute())  # on every command line: finds the JVMs to stop
    env = settings.child_env(
        SPARK_HOME=str(home),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_WORKER_DIR=str(folder / "work"),
        SPARK_LOG_DIR=str(folder / "logs"),
        SPARK_MASTER_OPTS=f"-Drecstack.marker={marker}",
        SPARK_WORKER_OPTS=f"-Drecstack.marker={marker}",
    )
    port, ui = free_port(), free_port()
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        master_log = folder / "master.log"
        logs.append(open(master_log, "w"))
        master = subprocess.Popen(
            [str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(ui)],
            stdout=logs[-1], stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        procs.append(master)
        _wait(lambda: port_open(port) and port_open(ui), master, 120, "spark master", master_log)
        url = f"spark://127.0.0.1:{port}"
        for w in range(workers):
            wlog = folder / f"worker-{w}.log"
            logs.append(open(wlog, "w"))
            procs.append(
                subprocess.Popen(
                    [
                        str(spark_class),
                        "org.apache.spark.deploy.worker.Worker",
                        url,
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        str(cores),
                        "--memory",
                        memory,
                        "--webui-port",
                        str(free_port()),
                        "--work-dir",
                        str(folder / "work"),
                    ],
                    stdout=logs[-1],
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )  # fmt: skip
            )
        _wait(lambda: _spark_workers_alive(ui) == workers, master, 120, "spark workers", master_log)
        for p, wlog in zip(procs[1:], range(workers)):
            if p.poll() is not None:
                raise ServerUnavailable(f"spark worker {wlog} exited; see {folder / f'worker-{wlog}.log'}")
        yield url
    finally:
        for p in reversed(procs):
            stop_process_tree(p, marker)
        for f in logs:
            f.close()


def empty_milvus(client) -> None:
    """Drop every alias and collection a test left on a shared Milvus server."""
    for name in client.list_collections():
        for a in client.list_aliases(name).get("aliases", []):
            client.drop_alias(a)
        client.drop_collection(name)


@contextmanager
def mlflow_server(folder: Path, backend_uri: str | None = None) -> Iterator[str]:
    """``mlflow server`` on a free loopback port over ``backend_uri`` (SQLite in ``folder`` by default),
    serving artifacts from ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = folder / "mlflow-server.log"
    backend_uri = backend_uri or f"sqlite:///{folder / 'mlflow.db'}"
    yield from _http_server(
        [
            _venv_exe("mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            backend_uri,
            "--artifacts-destination",
            str(folder / "artifacts"),
        ],
        port,
        "/health",
        "mlflow server",
        log_path,
        env=settings.child_env(MLFLOW_DISABLE_TELEMETRY="true"),
    )


@contextmanager
def dagster_dev(folder: Path, env: dict[str, str]) -> Iterator[str]:
    """``dagster dev`` (webserver and daemon, as ``make ui`` starts them) for this repository's
    workspace on a free loopback port, with ``env`` added to the environment."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = folder / "dagster-dev.log"
    yield from _http_server(
        [_venv_exe("dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        port,
        "/server_info",
        "dagster dev",
        log_path,
        env=settings.child_env(**env),
        cwd=Path(__file__).resolve().parents[2],
    )


def _http_server(cmd: list[str], port: int, health: str, what: str, log_path: Path, **popen) -> Iterator[str]:
    """Start ``cmd`` in its own session, yield its loopback URL once ``health`` answers, stop its tree."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(lambda: http_ok(f"{url}{health}"), proc, 120, what, log_path)
            yield url
        finally:
            stop_process_tree(proc)


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries, if the package is installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server(folder: Path, databases: tuple[str, ...] = ()) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port, trust auth, socket in ``folder``.

    Yields ``postgresql://postgres@127.0.0.1:PORT``; ``databases`` are created first. As root the
    cluster runs as the ``postgres`` user (the server refuses to run as root).
    """
    bindir = postgres_bin()
    if bindir is None:
        raise NotInstalled(
            "PostgreSQL server binaries not found (Debian package `postgresql`; `make test` installs it)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    as_user: list[str] = []
    if os.geteuid() == 0:
        # The server refuses root, and the postgres user cannot enter pytest's 0700 folders: use a
        # folder of its own under the system temp dir (removed afterwards).
        as_user = ["runuser", "-u", "postgres", "--"]
        folder = Path(tempfile.mkdtemp(prefix="recstack-pg-"))
        shutil.chown(folder, "postgres")
    data, log_path = folder / "pgdata", folder / "postgres.log"
    port = free_port()

    def run(*args: str) -> None:
        out = subprocess.run([*as_user, *args], capture_output=True, text=True)
        if out.returncode:
            raise ServerUnavailable(f"{Path(args[0]).name} failed: {out.stderr.strip()[-400:]}")

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(log_path),
        "-w",
        "-t",
        "60",
        "-o",
        f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off",
        "start",
    )
    url = f"postgresql://postgres@127.0.0.1:{port}"
    try:
        import psycopg

        with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
            for db in databases:
                conn.execute(f'CREATE DATABASE "{db}"')
        yield url
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        if as_user:
            shutil.rmtree(folder, ignore_errors=True)
