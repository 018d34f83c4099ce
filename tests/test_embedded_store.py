"""Embedded backend specifics: other processes read while one writes; a killed writer loses no commit."""

import multiprocessing as mp
import os
import signal
import time

from resources.feature_store.base import FamilySpec, TableSpec
from resources.feature_store.embedded import EmbeddedStore

SPEC = TableSpec("t", (FamilySpec("d", 1),))


def _writer(path, batches, size, hold_last):
    s = EmbeddedStore(path)
    for b in range(batches):
        s.put_cells("t", [(b"r%06d" % (b * size + i), b"d:x", b"%d" % b, 1) for i in range(size)])
    if hold_last:  # start a big batch and get killed inside it
        rows = [(b"z%07d" % i, b"d:x", b"partial", 1) for i in range(3_000_000)]
        open(hold_last, "w").close()  # tell the test the transaction starts now
        s.put_cells("t", rows)


def test_readers_see_only_whole_batches_while_a_process_writes(tmp_path):
    path = tmp_path / "fs.sqlite"
    s = EmbeddedStore(path)
    s.create_table(SPEC)
    p = mp.get_context("spawn").Process(target=_writer, args=(str(path), 40, 500, False))
    p.start()
    counts = []
    while p.is_alive():
        counts.append(sum(1 for _ in s.scan("t")))
        time.sleep(0.01)
    p.join()
    assert p.exitcode == 0
    counts.append(sum(1 for _ in s.scan("t")))
    assert all(c % 500 == 0 for c in counts)  # never half a batch
    assert counts[-1] == 20_000


def test_killed_writer_leaves_last_committed_batch(tmp_path):
    path = tmp_path / "fs.sqlite"
    s = EmbeddedStore(path)
    s.create_table(SPEC)
    p = mp.get_context("spawn").Process(target=_writer, args=(str(path), 3, 100, str(tmp_path / "started")))
    p.start()
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "started").exists():
        time.sleep(0.02)
    time.sleep(1.0)  # well inside the 3M-row transaction (it takes ~10 s)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    fresh = EmbeddedStore(path)
    rows = dict(fresh.scan("t"))
    assert len(rows) == 300 and not any(k.startswith(b"z") for k in rows)
