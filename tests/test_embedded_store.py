"""Embedded backend specifics: other processes read while one writes; a killed writer loses no commit."""

import multiprocessing as mp
import os
import signal
import sqlite3
import time

from resources.feature_store.base import FamilySpec, TableSpec
from resources.feature_store.embedded import EmbeddedStore

SPEC = TableSpec("t", (FamilySpec("d", 1),))


def _writer(path, batches, size, hold_last):
    s = EmbeddedStore(path)
    for b in range(batches):
        s.put_cells("t", [(b"r%06d" % (b * size + i), b"d:x", b"%d" % b, 1) for i in range(size)])
        time.sleep(0.01)  # give the reader a chance to land between batches
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
    assert any(0 < c < 20_000 for c in counts), counts  # and the reads did overlap the writes
    assert counts[-1] == 20_000


def _write_lock_held(path) -> bool:
    """True while another connection holds the database's write transaction (BEGIN .. COMMIT)."""
    probe = sqlite3.connect(path, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        if "locked" not in str(e) and "busy" not in str(e):
            raise
        return True
    finally:
        probe.close()


def test_killed_writer_leaves_last_committed_batch(tmp_path):
    """SIGKILL lands inside the 3M-row transaction (the write lock is seen held, from outside, just
    before the kill): the three committed batches are whole and no cell of the killed one is visible."""
    path = tmp_path / "fs.sqlite"
    s = EmbeddedStore(path)
    s.create_table(SPEC)
    p = mp.get_context("spawn").Process(target=_writer, args=(str(path), 3, 100, str(tmp_path / "started")))
    p.start()
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "started").exists():
        time.sleep(0.02)
    assert (tmp_path / "started").exists(), "the writer never reached the big batch"
    # The marker is written before put_cells copies and sorts its rows: wait for BEGIN itself.
    while time.time() < deadline and not _write_lock_held(path):
        assert p.is_alive(), "the writer ended before its transaction was seen"
        time.sleep(0.005)
    assert _write_lock_held(path), "the big batch's transaction never began"
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    assert p.exitcode == -signal.SIGKILL  # killed, not finished
    fresh = EmbeddedStore(path)
    rows = dict(fresh.scan("t"))
    assert sorted(rows) == [b"r%06d" % i for i in range(300)]
    assert {k: v[b"d:x"][0] for k, v in rows.items()} == {
        b"r%06d" % i: b"%d" % (i // 100) for i in range(300)
    }
    assert not _write_lock_held(path)  # the killed transaction rolled back; the store is writable
