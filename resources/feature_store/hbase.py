"""The HBase backend: happybase over Thrift, with a connection pool, batching and retries.

Thrift 1 has no lower time bound on reads, so ``ts_min`` is applied client-side; the upper bound
(``ts_max``) is HBase's own ``timestamp`` argument (cells with ``ts < timestamp``). The
target-population tag is a server-side ``SingleColumnValueFilter``. TTL and VERSIONS are family
settings that HBase enforces itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import happybase
from thriftpy2.transport import TTransportException

from resources.feature_store.base import FamilySpec, FeatureStore, Put, RowCells, TableSpec, split_column

log = logging.getLogger(__name__)
TRANSIENT = (TTransportException, ConnectionError, BrokenPipeError, TimeoutError, OSError)


class HBaseStore(FeatureStore):
    """HBase through a happybase ``ConnectionPool``.

    Parameters
    ----------
    host, port : str, int
        The HBase Thrift server.
    table_prefix : str
        Namespaces RecStack's tables (happybase joins it with ``_``).
    pool_size, batch_size, retries : int
        Pool connections, mutations per Thrift call, attempts on a transient connection error.
    """

    def __init__(
        self,
        host: str,
        port: int = 9090,
        table_prefix: str = "recstack",
        pool_size: int = 4,
        batch_size: int = 5000,
        retries: int = 3,
        timeout_ms: int | None = 60_000,
    ):
        self.pool = happybase.ConnectionPool(
            size=pool_size,
            host=host,
            port=port,
            table_prefix=table_prefix,
            timeout=timeout_ms,
            autoconnect=True,
        )
        self.batch_size = batch_size
        self.retries = retries

    @classmethod
    def from_config(cls, config) -> HBaseStore:
        """From a ``HBaseConfig`` (``host``, ``port``, ``table_prefix``)."""
        return cls(config.host, config.port, table_prefix=config.table_prefix)

    @contextmanager
    def _conn(self):
        with self.pool.connection() as c:
            yield c

    def _retry(self, fn):
        for attempt in range(self.retries):
            try:
                with self._conn() as c:
                    return fn(c)
            except TRANSIENT as e:  # the pool replaces a connection that raised
                if attempt == self.retries - 1:
                    raise
                log.warning("HBase transient error (%s), retry %d/%d", e, attempt + 1, self.retries)
                time.sleep(0.2 * 2**attempt)

    def create_table(self, spec: TableSpec) -> None:
        def go(c):
            if spec.name.encode() in c.tables() or spec.name in [t.decode() for t in c.tables()]:
                return
            c.create_table(
                spec.name,
                {
                    f.name: {
                        "max_versions": f.max_versions,
                        **({"time_to_live": f.ttl_seconds} if f.ttl_seconds else {}),
                    }
                    for f in spec.families
                },
            )

        self._retry(go)

    def drop_table(self, name: str) -> None:
        def go(c):
            if name.encode() in c.tables():
                c.delete_table(name, disable=True)

        self._retry(go)

    def tables(self) -> list[str]:
        return sorted(t.decode() for t in self._retry(lambda c: c.tables()))

    def table_spec(self, name: str) -> TableSpec:
        fams = self._retry(lambda c: c.table(name).families())
        return TableSpec(
            name,
            tuple(
                FamilySpec(
                    f.decode(),
                    max_versions=d["max_versions"],
                    ttl_seconds=None if d["time_to_live"] in (-1, 2147483647) else d["time_to_live"],
                )
                for f, d in sorted(fams.items())
            ),
        )

    def put_cells(self, table: str, cells: Iterable[Put]) -> int:
        rows = list(cells)
        fams = {f.name.encode() for f in self.table_spec(table).families}
        for r, c, _v, _ts in rows:
            if split_column(c)[0] not in fams:
                raise ValueError(
                    f"table {table!r} has no column family {split_column(c)[0].decode()!r} (cell {r!r} {c!r})"
                )
        # happybase batches carry one timestamp each: group by ts, send batch_size mutations a call.
        by_ts: dict[int, list[Put]] = {}
        for cell in rows:
            by_ts.setdefault(cell[3], []).append(cell)

        def go(c):
            t = c.table(table)
            for ts, group in by_ts.items():
                with t.batch(timestamp=ts, batch_size=self.batch_size) as b:
                    for r, col, v, _ in group:
                        b.put(r, {col: v})

        self._retry(go)
        return len(rows)

    def delete(self, table: str, row: bytes, columns: list[bytes] | None = None) -> None:
        self._retry(lambda c: c.table(table).delete(row, columns=columns))

    def row(self, table, row, columns=None, versions=1, ts_min=None, ts_max=None):
        def go(c):
            t = c.table(table)
            if versions == 1 and ts_min is None:
                got = t.row(row, columns=columns, timestamp=ts_max, include_timestamp=True)
                return {k: [v] for k, v in got.items()}
            # Several versions: list the row's columns, then ask each for its cells.
            cols = list(t.row(row, columns=columns, timestamp=ts_max).keys())
            out = {}
            for col in cols:
                cells = t.cells(
                    row,
                    col,
                    versions=versions if ts_min is None else max(versions, 1000),
                    timestamp=ts_max,
                    include_timestamp=True,
                )
                cells = [(v, ts) for v, ts in cells if ts_min is None or ts >= ts_min][:versions]
                if cells:
                    out[col] = cells
            return out

        return self._retry(go)

    def rows(self, table, rows, columns=None, ts_min=None, ts_max=None):
        """HBase's multi-get (one Thrift call for every row); a newest cell older than ``ts_min``
        means none in range."""
        keys = list(dict.fromkeys(rows))

        def go(c):
            got = c.table(table).rows(keys, columns=columns, timestamp=ts_max, include_timestamp=True)
            out = {}
            for r, cells in got:
                kept = {k: v for k, v in cells.items() if ts_min is None or v[1] >= ts_min}
                if kept:
                    out[r] = kept
            return out

        return self._retry(go) if keys else {}

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
        filt = None
        cols = list(columns) if columns else None
        if tag is not None:
            fam, qual = split_column(tag)
            filt = f"SingleColumnValueFilter ('{fam.decode()}', '{qual.decode()}', =, 'binary:1', true, true)"
            if cols is not None and tag not in cols and fam not in cols:
                cols.append(tag)  # the filter only sees columns the scan reads
        with self._conn() as c:
            n = 0
            for key, data in c.table(table).scan(
                row_start=row_start,
                row_stop=row_stop,
                row_prefix=row_prefix,
                columns=cols,
                filter=filt,
                timestamp=ts_max,
                include_timestamp=True,
            ):
                cells = {
                    k: v
                    for k, v in data.items()
                    if (ts_min is None or v[1] >= ts_min)
                    and (columns is None or k != tag or tag in columns or split_column(tag)[0] in columns)
                }
                if not cells:
                    continue
                yield key, cells
                n += 1
                if limit is not None and n >= limit:
                    return

    def close(self) -> None:
        pass  # pooled connections close when the pool is garbage-collected
