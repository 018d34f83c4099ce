"""Milvus: Milvus Lite (a local file, no server) by default, any Milvus server or cluster by URI.

One code path: both are driven through ``pymilvus.MilvusClient``. Locally ``uri`` is a file
path (Milvus Lite, started in-process on first use); in production it is
``http://milvus:19530`` (or ``https://…``) with a ``token`` (``user:password`` or an API key),
read from the environment at run time.
"""

from __future__ import annotations

import threading
from pathlib import Path

from dagster import ConfigurableResource

_CLIENTS: dict[tuple[str, str, str], object] = {}
# pymilvus pings every 10 s, even with no call in flight; Milvus Lite's in-process gRPC server
# keeps gRPC's default of one ping per 5 min without data and answers more with
# "GOAWAY … too_many_pings" on stderr. The server is in this process: ping no more than it allows.
LITE_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}
_LOCK = threading.Lock()


def is_lite(uri: str) -> bool:
    """True for a Milvus Lite file path, False for a server URI."""
    return "://" not in uri


def milvus_client(uri: str, token: str = "", db_name: str = ""):
    """The process's ``MilvusClient`` for ``uri`` (created once: Milvus Lite allows one opener)."""
    from pymilvus import MilvusClient

    key = (uri, token, db_name)
    with _LOCK:
        if key not in _CLIENTS:
            if is_lite(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            kw = {"token": token} if token else {}
            if is_lite(uri):
                kw["grpc_options"] = LITE_GRPC_OPTIONS
            if db_name:
                kw["db_name"] = db_name
            _CLIENTS[key] = MilvusClient(uri, **kw)
        return _CLIENTS[key]


def release(uri: str) -> None:
    """Close the client for ``uri`` and, for Milvus Lite, release its file lock (``close()`` alone
    does not), so another process may open it."""
    with _LOCK:
        for key in [k for k in _CLIENTS if k[0] == uri]:
            try:
                _CLIENTS.pop(key).close()
            except Exception:  # noqa: BLE001 - closing a dead connection is not an error
                pass
    if is_lite(uri):
        try:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(Path(uri).absolute()))
        except Exception:  # noqa: BLE001 - nothing to release
            pass


class MilvusResource(ConfigurableResource):
    """Where vector collections live: ``uri`` is a Milvus Lite file or a server URI; ``token``
    authenticates against a server."""

    uri: str
    token: str = ""
    db_name: str = ""

    def client(self):
        return milvus_client(self.uri, self.token, self.db_name)
