"""The embedded backend: SQLite in WAL mode on local disk.

Why SQLite: it is in the standard library (nothing to start), WAL gives many concurrent readers
(other processes included) beside one writer, every ``put_cells`` batch is one transaction (a
killed writer leaves the last committed batch readable, never half of one), and a
``WITHOUT ROWID`` table keyed ``(row, col, ts)`` is exactly HBase's sort order, so prefix and range
scans are index range reads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from resources.feature_store.base import FamilySpec, FeatureStore, Put, RowCells, TableSpec, split_column

_HI = b"\xff" * 8


def _bounds(*ranges: tuple[str, object, object]) -> tuple[list[str], list]:
    """SQL conditions for half-open ranges ``(column, low, high)``; ``None`` leaves a side open."""
    conds, args = [], []
    for col, lo, hi in ranges:
        if lo is not None:
            conds.append(f"{col} >= ?")
            args.append(lo)
        if hi is not None:
            conds.append(f"{col} < ?")
            args.append(hi)
    return conds, args


def _prefix_end(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key starting with ``prefix``."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)


class EmbeddedStore(FeatureStore):
    """File-backed store (one SQLite file per store).

    Parameters
    ----------
    path : str or Path
        Database file; created with its parent folder.
    clock : callable, optional
        Milliseconds "now" used for TTL (tests pass a fixed clock).
    """

    remote = False  # a local file: reads take microseconds

    @classmethod
    def from_config(cls, config) -> EmbeddedStore:
        """From an ``EmbeddedConfig`` (``path``)."""
        return cls(config.path)

    def __init__(self, path: str | Path, clock: Callable[[], int] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock or (lambda: int(time.time() * 1000))
        self._lock = threading.RLock()
        self._local = threading.local()  # one connection per thread: SQLite isolates them properly
        self._all: list[sqlite3.Connection] = []
        self._conn.execute("CREATE TABLE IF NOT EXISTS _tables (name TEXT PRIMARY KEY, spec TEXT NOT NULL)")
        self._specs: dict[str, TableSpec] = {}

    @property
    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False, isolation_level=None)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crashed process loses no commit
            c.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache
            c.execute("PRAGMA temp_store=MEMORY")
            c.execute("PRAGMA mmap_size=1073741824")  # reads straight from the page cache
            c.execute("PRAGMA wal_autocheckpoint=20000")  # fewer checkpoints during bulk writes
            self._local.conn = c
            with self._lock:
                self._all.append(c)
        return c

    # -- tables -----------------------------------------------------------------------------
    def create_table(self, spec: TableSpec) -> None:
        if not spec.families:
            raise ValueError(f"table {spec.name!r} needs at least one column family")
        body = json.dumps({"families": [f.__dict__ for f in spec.families]})
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("INSERT OR IGNORE INTO _tables VALUES (?, ?)", (spec.name, body))
                self._conn.execute(
                    f'CREATE TABLE IF NOT EXISTS "{self._t(spec.name)}" '
                    "(row BLOB NOT NULL, col BLOB NOT NULL, ts INTEGER NOT NULL, value BLOB NOT NULL, "
                    "PRIMARY KEY (row, col, ts)) WITHOUT ROWID"
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self._specs.pop(spec.name, None)

    def drop_table(self, name: str) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(f'DROP TABLE IF EXISTS "{self._t(name)}"')
            self._conn.execute("DELETE FROM _tables WHERE name = ?", (name,))
            self._conn.execute("COMMIT")
        self._specs.pop(name, None)

    def tables(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT name FROM _tables ORDER BY name")]

    def table_spec(self, name: str) -> TableSpec:
        spec = self._specs.get(name)
        if spec is None:
            row = self._conn.execute("SELECT spec FROM _tables WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise KeyError(f"no table {name!r}")
            spec = TableSpec(name, tuple(FamilySpec(**f) for f in json.loads(row[0])["families"]))
            self._specs[name] = spec
        return spec

    @staticmethod
    def _t(name: str) -> str:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad table name {name!r}")
        return f"t_{name}"

    # -- writes -----------------------------------------------------------------------------
    def put_cells(self, table: str, cells: Iterable[Put]) -> int:
        spec = self.table_spec(table)
        fams = {f.name.encode() for f in spec.families}
        rows = list(cells)
        for col in {c for _, c, _, _ in rows}:
            fam = split_column(col)[0]
            if fam not in fams:
                bad = next(r for r in rows if r[1] == col)
                raise ValueError(
                    f"table {table!r} has no column family {fam.decode()!r} (cell {bad[0]!r} {col!r})"
                )
        rows.sort(key=lambda r: (r[0], r[1]))  # key order turns B-tree inserts into appends
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    f'INSERT OR REPLACE INTO "{self._t(table)}" (row, col, value, ts) VALUES (?, ?, ?, ?)',
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(rows)

    def delete(self, table: str, row: bytes, columns: list[bytes] | None = None) -> None:
        self.table_spec(table)
        where, args = self._col_filter(columns)
        with self._lock:
            self._conn.execute(f'DELETE FROM "{self._t(table)}" WHERE row = ?{where}', (row, *args))

    def compact(self, table: str) -> int:
        """Physically remove expired cells and versions beyond ``max_versions``; returns rows removed."""
        spec = self.table_spec(table)
        removed = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            for f in spec.families:
                lo, hi = f.name.encode() + b":", f.name.encode() + b";"
                if f.ttl_seconds is not None:
                    cut = self.clock() - f.ttl_seconds * 1000
                    removed += self._conn.execute(
                        f'DELETE FROM "{self._t(table)}" WHERE col >= ? AND col < ? AND ts < ?', (lo, hi, cut)
                    ).rowcount
                removed += self._conn.execute(
                    f'DELETE FROM "{self._t(table)}" WHERE (row, col, ts) IN (SELECT row, col, ts FROM '
                    f"(SELECT row, col, ts, ROW_NUMBER() OVER (PARTITION BY row, col ORDER BY ts DESC) AS n "
                    f'FROM "{self._t(table)}" WHERE col >= ? AND col < ?) WHERE n > ?)',
                    (lo, hi, f.max_versions),
                ).rowcount
            self._conn.execute("COMMIT")
        return removed

    # -- reads ------------------------------------------------------------------------------
    def _col_filter(self, columns: list[bytes] | None) -> tuple[str, list]:
        if not columns:
            return "", []
        parts, args = [], []
        for c in columns:
            if b":" in c:
                parts.append("col = ?")
                args.append(c)
            else:
                parts.append("(col >= ? AND col < ?)")
                args += [c + b":", c + b";"]
        return " AND (" + " OR ".join(parts) + ")", args

    def _visibility(self, spec: TableSpec):
        """Per-family (ttl cutoff ms or None, max_versions)."""
        now = self.clock()
        return {
            f.name.encode(): (
                now - f.ttl_seconds * 1000 if f.ttl_seconds is not None else None,
                f.max_versions,
            )
            for f in spec.families
        }

    def row(self, table, row, columns=None, versions=1, ts_min=None, ts_max=None):
        spec = self.table_spec(table)
        vis = self._visibility(spec)
        where, args = self._col_filter(columns)
        tconds, targs = _bounds(("ts", ts_min, ts_max))
        where += "".join(f" AND {c}" for c in tconds)
        q = f'SELECT col, ts, value FROM "{self._t(table)}" WHERE row = ?{where} ORDER BY col, ts DESC'
        out: dict[bytes, list[tuple[bytes, int]]] = {}
        seen: dict[bytes, int] = {}
        for col, ts, value in self._conn.execute(q, (row, *args, *targs)):
            col = bytes(col)
            cut, maxv = vis[col.split(b":", 1)[0]]
            n = seen.get(col, 0)
            seen[col] = n + 1
            if n >= maxv or (cut is not None and ts < cut):
                continue  # beyond VERSIONS or expired: invisible, as in HBase
            cells = out.setdefault(col, [])
            if len(cells) < versions:
                cells.append((bytes(value), ts))
        return out

    def rows(self, table, rows, columns=None, ts_min=None, ts_max=None):
        """One query for every row (``row IN (…)``), with the visibility rules of :meth:`row`."""
        keys = list(dict.fromkeys(rows))
        if not keys:
            return {}
        spec = self.table_spec(table)
        vis = self._visibility(spec)
        where, args = self._col_filter(columns)
        tconds, targs = _bounds(("ts", ts_min, ts_max))
        where += "".join(f" AND {c}" for c in tconds)
        marks = ",".join("?" * len(keys))
        q = (
            f'SELECT row, col, ts, value FROM "{self._t(table)}" WHERE row IN ({marks}){where} '
            "ORDER BY row, col, ts DESC"
        )
        out: dict[bytes, dict[bytes, tuple[bytes, int]]] = {}
        seen: dict[tuple[bytes, bytes], int] = {}
        for row, col, ts, value in self._conn.execute(q, (*keys, *args, *targs)):
            row, col = bytes(row), bytes(col)
            cut, maxv = vis[col.split(b":", 1)[0]]
            n = seen.get((row, col), 0)
            seen[(row, col)] = n + 1
            if n >= maxv or (cut is not None and ts < cut) or n > 0:
                continue  # beyond VERSIONS, expired, or not the newest: as row() with versions=1
            out.setdefault(row, {})[col] = (bytes(value), ts)
        return out

    def scan(
        self,
        table,
        row_prefix=None,
        row_start=None,
        row_stop=None,
        columns=None,
        ts_min=None,
        ts_max=None,
        limit=None,
        tag=None,
    ) -> Iterator[tuple[bytes, RowCells]]:
        spec = self.table_spec(table)
        vis = self._visibility(spec)
        t = self._t(table)
        if row_prefix is not None:
            row_start, row_stop = row_prefix, _prefix_end(row_prefix)
        # The time range filters before versions are counted, as in HBase, and in SQL, so a
        # one-day read of a long history does not surface every cell.
        conds, args = _bounds(("row", row_start, row_stop), ("ts", ts_min, ts_max))
        where, cargs = self._col_filter(columns)
        if tag is not None:
            conds.append(f'row IN (SELECT row FROM "{t}" WHERE col = ? AND value = ?)')
            args += [tag, b"1"]
        sql = (
            f'SELECT row, col, ts, value FROM "{t}"'
            + (" WHERE " + " AND ".join(conds) if conds else " WHERE 1")
            + where
        )
        sql += " ORDER BY row, col, ts DESC"
        cur = self._conn.execute(sql, (*args, *cargs))
        fam_of: dict[bytes, tuple] = {}
        current, cells, n_rows, last_col, n_ver = None, {}, 0, None, 0
        fetch = cur.fetchmany
        while True:
            batch = fetch(8192)
            if not batch:
                break
            for r, col, ts, value in batch:  # SQLite returns BLOBs as bytes: no copies here
                if r != current:
                    if cells:
                        yield current, cells
                        n_rows += 1
                        if limit is not None and n_rows >= limit:
                            cur.close()
                            return
                    current, cells, last_col = r, {}, None
                if col != last_col:
                    last_col, n_ver = col, 0
                n_ver += 1
                vis_col = fam_of.get(col)
                if vis_col is None:
                    vis_col = fam_of[col] = vis[col.split(b":", 1)[0]]
                cut, maxv = vis_col
                if n_ver > maxv or (cut is not None and ts < cut):
                    continue
                if n_ver > 1 and col in cells:
                    continue
                cells[col] = (value, ts)
        if cells and (limit is None or n_rows < limit):
            yield current, cells

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                c.close()
            self._all.clear()
        self._local = threading.local()
