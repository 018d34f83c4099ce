"""Fault injection on the HBase Thrift path: a proxy between happybase and the test Thrift gateway
drops connections mid-request. Transient drops are retried and the write lands once; a gateway
that never answers fails after exactly ``retries`` attempts; a server-side error is not retried."""

from __future__ import annotations

import socket
import threading

import pytest

from resources.feature_store.base import FamilySpec, TableSpec
from resources.feature_store.embedded import EmbeddedStore
from resources.feature_store.hbase import HBaseStore
from tests.support.thrift_gateway import ThriftGateway

SPEC = TableSpec("events", (FamilySpec("d", 1),))


class DroppingProxy:
    """TCP proxy on 127.0.0.1: the next ``drop`` connections are closed after their first bytes
    arrive (a server that died mid-call); later ones are forwarded. Counts connections."""

    def __init__(self, target_port: int):
        self.target, self.drop, self.connections, self.active = target_port, 0, 0, []
        self.dropped_requests = 0  # requests that arrived on a connection the proxy then dropped
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.drop > 0:
                self.drop -= 1
                client.settimeout(5)
                try:
                    if client.recv(1):
                        self.dropped_requests += 1
                except OSError:
                    pass
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.active.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Break every open connection (the region server restarted under the pooled connection)."""
        for pair in self.active:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.active.clear()

    def close(self):
        self._stop = True
        self.sock.close()


def count_attempts(store: HBaseStore) -> list:
    """Count the store's attempts (each one takes a pooled connection once)."""
    from contextlib import contextmanager

    attempts: list = []
    real = store._conn

    @contextmanager
    def counting():
        attempts.append(1)
        with real() as c:
            yield c

    store._conn = counting
    return attempts


@pytest.fixture
def proxied(tmp_path):
    backing = EmbeddedStore(tmp_path / "gw.sqlite")
    with ThriftGateway(backing) as gw:
        proxy = DroppingProxy(gw.port)
        store = HBaseStore("127.0.0.1", proxy.port, table_prefix="rt", pool_size=1, retries=3)
        store.create_table(SPEC)
        yield store, proxy, backing
        proxy.close()
    backing.close()


def _cells(n=50):
    return [(b"r%03d" % i, b"d:x", b"%d" % i, 1000) for i in range(n)]


def test_dropped_connections_are_retried_and_the_write_lands_once(proxied):
    store, proxy, _ = proxied
    proxy.cut()  # attempt 1 fails on the pooled connection
    proxy.drop = 1  # attempt 2's new connection dies mid-call; attempt 3 works
    attempts = count_attempts(store)
    assert store.put_cells("events", _cells()) == 50
    # table_spec's read (attempt 1 of its own, on the cut connection: retried) and the write.
    assert proxy.drop == 0 and proxy.dropped_requests == 1 and len(attempts) == 4
    rows = dict(store.scan("events"))
    assert sorted(rows) == [b"r%03d" % i for i in range(50)] and rows[b"r007"][b"d:x"] == (b"7", 1000)


def test_a_gateway_that_keeps_dropping_fails_after_the_retries(proxied):
    store, proxy, _ = proxied
    proxy.cut()
    proxy.drop = 100
    attempts = count_attempts(store)
    with pytest.raises(Exception) as err:
        store.put_cells("events", _cells())
    assert type(err.value).__name__ in (
        "TTransportException",
        "ConnectionResetError",
        "BrokenPipeError",
        "OSError",
    )
    # Exactly `retries` (3) attempts: the cut pooled connection, then two requests on new connections,
    # then the error. (happybase's pool reconnects after every failure, the last one included, so
    # the number of *connections* is 2 or 3 depending on timing; the requests are what count.)
    assert proxy.dropped_requests == 2 and len(attempts) == 3


def test_a_server_side_error_is_not_retried(proxied):
    store, proxy, _ = proxied
    attempts = count_attempts(store)
    with pytest.raises(Exception) as err:
        store.put_cells("no_such_table", _cells(1))
    assert type(err.value).__name__ == "IOError" and not isinstance(
        err.value, OSError
    )  # Hbase.thrift's IOError
    assert len(attempts) == 1 and proxy.dropped_requests == 0  # one attempt: not retried
