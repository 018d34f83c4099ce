"""An append-only event log: what the service served (impressions) and what users did (feedback).

Layout, the same on a local folder and on an object store::

    <root>/<kind>/date=YYYY-MM-DD/<writer>-<seq>.jsonl

A writer never appends to a file: each batch is a new file, written aside and renamed into place
(an object store writes it whole), so a reader sees whole batches only and a crash loses at most
the batch in flight. :meth:`EventLog.append` only puts the record on a queue; a daemon thread
writes the batches, so no request waits on storage.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import uuid
from datetime import UTC, datetime

import pandas as pd
import pyarrow.fs as pafs
from dagster import ConfigurableResource

log = logging.getLogger(__name__)


def _fs(root: str) -> tuple[pafs.FileSystem, str]:
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(root)


class EventLog:
    """Queue records in memory, write them as JSON-lines batches from one background thread.

    Parameters
    ----------
    root : str
        A folder or an object-store URI (``s3://bucket/recstack/events``).
    flush_seconds : float
        The longest a record waits before its batch is written.
    max_queue : int
        Records held before new ones are dropped (counted in :attr:`dropped`): a slow store must
        never slow a request.
    """

    def __init__(self, root: str, flush_seconds: float = 1.0, max_queue: int = 100_000):
        self.root = root
        self.fs, self.base = _fs(root)
        self.flush_seconds = flush_seconds
        self.writer = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._q: queue.Queue = queue.Queue(max_queue)
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="recstack-event-log", daemon=True)
        self._thread.start()

    def append(self, kind: str, record: dict) -> None:
        """Queue ``record`` under ``kind`` (a ``ts`` in ISO-8601 UTC is added when missing)."""
        record = record if "ts" in record else {**record, "ts": datetime.now(UTC).isoformat()}
        try:
            self._q.put_nowait((kind, record))
        except queue.Full:
            self.dropped += 1

    def flush(self) -> int:
        """Write everything queued now (returns the records written). Drains and writes under one
        lock, so when it returns every record appended before the call is in the store."""
        with self._lock:
            batch = []
            while True:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            by_key: dict[tuple[str, str], list[dict]] = {}
            for kind, rec in batch:
                by_key.setdefault((kind, str(rec["ts"])[:10]), []).append(rec)
            for (kind, day), recs in by_key.items():
                self._write(kind, day, recs)
        return len(batch)

    def _write(self, kind: str, day: str, recs: list[dict]) -> None:
        folder = f"{self.base}/{kind}/date={day}"
        self.fs.create_dir(folder, recursive=True)
        self._seq += 1
        final = f"{folder}/{self.writer}-{self._seq:06d}.jsonl"
        tmp = final + ".tmp"
        body = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in recs).encode()
        with self.fs.open_output_stream(tmp) as f:
            f.write(body)
        self.fs.move(tmp, final)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep serving; the next flush tries again
                log.exception("event log flush failed")

    def close(self) -> None:
        """Stop the thread and write what is queued."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


def read_events(root: str, kind: str, days: list[str] | None = None) -> pd.DataFrame:
    """Every record of ``kind`` (on ``days``, ``YYYY-MM-DD``, or all), one row each."""
    fs, base = _fs(root)
    folder = f"{base}/{kind}"
    if fs.get_file_info(folder).type == pafs.FileType.NotFound:
        return pd.DataFrame()
    infos = fs.get_file_info(pafs.FileSelector(folder, recursive=True))
    rows = []
    for i in sorted(infos, key=lambda i: i.path):
        if i.type != pafs.FileType.File or not i.path.endswith(".jsonl"):
            continue
        if days is not None and not any(f"/date={d}/" in i.path for d in days):
            continue
        with fs.open_input_stream(i.path) as f:
            rows += [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
    return pd.DataFrame(rows)


class EventLogResource(ConfigurableResource):
    """Where the service's impressions and feedback are read from (the service's
    ``RECSTACK_EVENT_LOG_ROOT``)."""

    root: str

    def read(self, kind: str, days: list[str] | None = None) -> pd.DataFrame:
        """:func:`read_events` under this root."""
        return read_events(self.root, kind, days)
