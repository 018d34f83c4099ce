"""An HBase Thrift-1 server backed by any :class:`FeatureStore`.

It is built from the ``Hbase.thrift`` IDL that happybase itself ships, so a real
``happybase.Connection`` talks to it over the real wire protocol. The contract tests use it to
exercise :class:`~resources.feature_store.hbase.HBaseStore` without an HBase cluster; it also
lets any Thrift-1 HBase client read an embedded store.

Supported: table admin, puts/deletes (with and without timestamps), row/cell reads with versions
and an upper time bound, scanners (start/stop/prefix, columns, timestamp, batch size) and the
``SingleColumnValueFilter`` used for target populations. Anything else answers ``IllegalArgument``
(only exceptions the IDL declares, or the connection would drop).
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from pathlib import Path

import happybase
import thriftpy2
from thriftpy2.rpc import make_server

from resources.feature_store.base import FamilySpec, FeatureStore, TableSpec

Hbase = thriftpy2.load(str(Path(happybase.__file__).with_name("Hbase.thrift")), module_name="Hbase_thrift")

_SCVF = re.compile(
    r"SingleColumnValueFilter\s*\(\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*=\s*,\s*'binary:([^']*)'\s*,\s*true\s*,\s*true\s*\)"
)


class _Handler:
    def __init__(self, store: FeatureStore):
        self.s = store
        self.scanners: dict[int, object] = {}
        self.ids = itertools.count(1)

    # -- errors ---------------------------------------------------------------------------
    def _call(self, fn, *a):
        try:
            return fn(*a)
        except KeyError as e:
            raise Hbase.IOError(message=str(e)) from None
        except ValueError as e:
            raise Hbase.IllegalArgument(message=str(e)) from None
        except (Hbase.IOError, Hbase.IllegalArgument, Hbase.AlreadyExists):
            raise
        except Exception as e:  # an undeclared exception would drop the client's socket
            raise Hbase.IOError(message=f"{type(e).__name__}: {e}") from None

    # -- admin ----------------------------------------------------------------------------
    def getTableNames(self):
        return [t.encode() for t in self.s.tables()]

    def createTable(self, name, families):
        name = name.decode()
        if name in self.s.tables():
            raise Hbase.AlreadyExists(message=f"table {name} exists")
        fams = tuple(
            FamilySpec(
                f.name.decode().rstrip(":"),
                max_versions=f.maxVersions,
                ttl_seconds=None if f.timeToLive in (-1, None, 2147483647) else f.timeToLive,
            )
            for f in families
        )
        self._call(self.s.create_table, TableSpec(name, fams))

    def deleteTable(self, name):
        self.s.drop_table(name.decode())

    def enableTable(self, name):
        pass

    def disableTable(self, name):
        pass

    def isTableEnabled(self, name):
        return name.decode() in self.s.tables()

    def getColumnDescriptors(self, name):
        spec = self._call(self.s.table_spec, name.decode())
        return {
            f"{f.name}:".encode(): Hbase.ColumnDescriptor(
                name=f"{f.name}:".encode(),
                maxVersions=f.max_versions,
                timeToLive=f.ttl_seconds if f.ttl_seconds else 2147483647,
            )
            for f in spec.families
        }

    def compact(self, name):
        pass

    def majorCompact(self, name):
        if hasattr(self.s, "compact"):
            self.s.compact(name.decode())

    # -- writes ---------------------------------------------------------------------------
    def mutateRows(self, table, batches, attributes):
        self._mutate(table, batches, None)

    def mutateRowsTs(self, table, batches, ts, attributes):
        self._mutate(table, batches, ts)

    def mutateRow(self, table, row, mutations, attributes):
        self._mutate(table, [Hbase.BatchMutation(row=row, mutations=mutations)], None)

    def mutateRowTs(self, table, row, mutations, ts, attributes):
        self._mutate(table, [Hbase.BatchMutation(row=row, mutations=mutations)], ts)

    def _mutate(self, table, batches, ts):
        import time

        t = table.decode()
        ts = ts if ts is not None else int(time.time() * 1000)
        puts = []
        for b in batches:
            dels = [m.column for m in b.mutations if m.isDelete]
            if dels:
                self._call(self.s.delete, t, b.row, [c.rstrip(b":") if c.endswith(b":") else c for c in dels])
            puts += [(b.row, m.column, m.value, ts) for m in b.mutations if not m.isDelete]
        if puts:
            self._call(self.s.put_cells, t, puts)

    def deleteAll(self, table, row, column, attributes):
        self._call(self.s.delete, table.decode(), row, [column])

    def deleteAllRow(self, table, row, attributes):
        self._call(self.s.delete, table.decode(), row, None)

    # -- reads ----------------------------------------------------------------------------
    @staticmethod
    def _result(row, cells: dict) -> Hbase.TRowResult:
        return Hbase.TRowResult(
            row=row, columns={c: Hbase.TCell(value=v, timestamp=ts) for c, (v, ts) in cells.items()}
        )

    def _row(self, table, row, columns, ts):
        got = self._call(
            self.s.row, table.decode(), row, [c.rstrip(b":") for c in columns or []] or None, 1, None, ts
        )
        return [self._result(row, {c: v[0] for c, v in got.items()})] if got else []

    def getRow(self, table, row, attributes):
        return self._row(table, row, [], None)

    def getRowWithColumns(self, table, row, columns, attributes):
        return self._row(table, row, columns, None)

    def getRowTs(self, table, row, ts, attributes):
        return self._row(table, row, [], ts)

    def getRowWithColumnsTs(self, table, row, columns, ts, attributes):
        return self._row(table, row, columns, ts)

    def getRowsWithColumns(self, table, rows, columns, attributes):
        return [r for row in rows for r in self._row(table, row, columns, None)]

    def getRowsWithColumnsTs(self, table, rows, columns, ts, attributes):
        return [r for row in rows for r in self._row(table, row, columns, ts)]

    def _ver(self, table, row, column, ts, n):
        got = self._call(self.s.row, table.decode(), row, [column], n, None, ts)
        return [Hbase.TCell(value=v, timestamp=t) for v, t in got.get(column, [])]

    def getVer(self, table, row, column, n, attributes):
        return self._ver(table, row, column, None, n)

    def getVerTs(self, table, row, column, ts, n, attributes):
        return self._ver(table, row, column, ts, n)

    def scannerOpenWithScan(self, table, scan, attributes):
        tag = None
        if scan.filterString:
            m = _SCVF.fullmatch(scan.filterString.decode().strip())
            if not m or m.group(3) != "1":
                raise Hbase.IllegalArgument(message=f"unsupported filter: {scan.filterString!r}")
            tag = f"{m.group(1)}:{m.group(2)}".encode()
        cols = [c.rstrip(b":") for c in (scan.columns or [])] or None
        it = self._call(
            lambda: self._materialize_scan(
                table.decode(),
                row_start=scan.startRow or None,
                row_stop=scan.stopRow or None,
                columns=cols,
                ts_max=scan.timestamp,
                tag=tag,
            )
        )
        sid = next(self.ids)
        self.scanners[sid] = it
        return sid

    def _materialize_scan(self, *a, **kw):
        # Pull the first row now so errors (unknown table) surface at open, as in HBase.
        it = self.s.scan(*a, **kw)
        first = next(it, None)
        return itertools.chain([first] if first is not None else [], it)

    def scannerOpen(self, table, start, columns, attributes):
        return self.scannerOpenWithScan(table, Hbase.TScan(startRow=start, columns=columns), attributes)

    def scannerOpenWithStop(self, table, start, stop, columns, attributes):
        return self.scannerOpenWithScan(
            table, Hbase.TScan(startRow=start, stopRow=stop, columns=columns), attributes
        )

    def scannerGetList(self, sid, n):
        it = self.scanners.get(sid)
        if it is None:
            raise Hbase.IllegalArgument(message=f"no scanner {sid}")
        return [self._result(r, cells) for r, cells in itertools.islice(it, n)]

    def scannerGet(self, sid):
        return self.scannerGetList(sid, 1)

    def scannerClose(self, sid):
        self.scanners.pop(sid, None)


class ThriftGateway:
    """Serve ``store`` over HBase Thrift 1 on ``host:port`` in a background thread.

    Use as a context manager; ``port=0`` picks a free port (read ``.port`` after start).
    """

    def __init__(self, store: FeatureStore, host: str = "127.0.0.1", port: int = 0):
        self.store, self.host, self.port = store, host, port
        self.server = None
        self.thread = None

    def start(self) -> ThriftGateway:
        if not self.port:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        # client_timeout=None: the default 3 s drops idle pooled connections.
        self.server = make_server(
            Hbase.Hbase, _Handler(self.store), self.host, self.port, client_timeout=None
        )
        self.thread = threading.Thread(target=self.server.serve, daemon=True, name="hbase-thrift-gateway")
        self.thread.start()
        deadline = time.monotonic() + 10
        while True:  # serve() binds in its thread: wait until the port answers
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Thrift gateway did not start on {self.host}:{self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            try:
                self.server.trans.close()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
