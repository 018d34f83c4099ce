"""A versioned IO manager: every materialization writes a new version, then flips a pointer.

Layout under ``root`` (a local folder or any URI that ``pyarrow.fs`` understands, e.g. ``s3://``)::

    <asset/key>/<partition or _>/<version>/data.parquet | data.json | obj/...
    <asset/key>/<partition or _>/CURRENT        {"version": ..., "kind": ..., "class": ...}

``CURRENT`` is written last (a temp object renamed into place), so a writer that dies mid-write
leaves the previous good version readable, and re-materializing a partition just publishes a new
version with the same content (idempotent). The two newest versions are kept for rollback.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from dagster import ConfigurableIOManager, InputContext, OutputContext

# Only our own classes may be re-instantiated from a manifest (no arbitrary imports from data).
_ALLOWED_PREFIXES = ("assets.", "resources.")
KEEP_VERSIONS = 2


@dataclass(frozen=True)
class ParquetDataset:
    """A published table by reference: what an engine that reads Parquet itself (Spark) is given
    instead of the rows, so they never pass through this process.

    Attributes
    ----------
    uri : str
        The Parquet file (a local path, or ``scheme://…`` on an object store).
    rows : int
        Row count from the manifest.
    version : str
        The storage version it belongs to.
    """

    uri: str
    rows: int
    version: str

    @classmethod
    def write(cls, frame: pd.DataFrame, path: str | Path) -> ParquetDataset:
        """``frame`` written to the local file ``path``, by reference (tests, benchmarks)."""
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), str(path))
        return cls(str(path), len(frame), "")

    def to_pandas(self) -> pd.DataFrame:
        """The rows, read here (for the single-node engines)."""
        fs, path = (
            pafs.FileSystem.from_uri(self.uri) if "://" in self.uri else (pafs.LocalFileSystem(), self.uri)
        )
        return pq.read_table(path, filesystem=fs).to_pandas()

    def content_hash(self) -> str:
        """12 hex digits of SHA-256 over the file, streamed (the model's data version)."""
        fs, path = (
            pafs.FileSystem.from_uri(self.uri) if "://" in self.uri else (pafs.LocalFileSystem(), self.uri)
        )
        h = hashlib.sha256()
        with fs.open_input_stream(path) as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
        return h.hexdigest()[:12]


class VersionedStore:
    """Plain (Dagster-free) versioned object store used by the IO manager and by tests."""

    def __init__(self, root: str):
        self.scheme = root.split("://", 1)[0] if "://" in root else ""
        if "://" in root:
            self.fs, base = pafs.FileSystem.from_uri(root)
        else:
            self.fs, base = pafs.LocalFileSystem(), str(Path(root).absolute())
        self.base = base.rstrip("/")
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def _dir(self, key: list[str], partition: str | None) -> str:
        return "/".join([self.base, *key, partition or "_"])

    def current(self, key: list[str], partition: str | None = None) -> dict | None:
        """The manifest of the published version, or None if nothing was published."""
        path = self._dir(key, partition) + "/CURRENT"
        try:
            with self.fs.open_input_stream(path) as f:
                return json.loads(f.read())
        except (FileNotFoundError, OSError):
            return None

    def write(self, key: list[str], partition: str | None, obj: Any, extra: dict | None = None) -> dict:
        """Write ``obj`` as a new version and publish it. Returns the manifest."""
        d = self._dir(key, partition)
        # Names sort in write order (GC keeps the newest by name): UTC time to the nanosecond.
        ns = time.time_ns()
        version = (
            time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 1_000_000_000))
            + f".{ns % 1_000_000_000:09d}-{uuid.uuid4().hex[:6]}"
        )
        vdir = f"{d}/{version}"
        self.fs.create_dir(vdir, recursive=True)
        manifest: dict[str, Any] = {"version": version, **(extra or {})}
        if isinstance(obj, pd.DataFrame):
            obj = pa.Table.from_pandas(obj, preserve_index=False)
            manifest["kind"] = "dataframe"
        elif isinstance(obj, pa.Table):
            manifest["kind"] = "arrow"
        if manifest.get("kind") in ("dataframe", "arrow"):
            pq.write_table(obj, f"{vdir}/data.parquet", filesystem=self.fs)
            manifest["rows"] = obj.num_rows
        elif isinstance(obj, (dict, list)):
            with self.fs.open_output_stream(f"{vdir}/data.json") as f:
                f.write(json.dumps(obj, default=str, indent=1).encode())
            manifest["kind"] = "json"
        elif hasattr(obj, "save") and hasattr(type(obj), "load"):
            cls = f"{type(obj).__module__}.{type(obj).__qualname__}"
            if not cls.startswith(_ALLOWED_PREFIXES):
                raise TypeError(f"refusing to persist {cls}: only RecStack classes are stored as objects")
            self._save_object(obj, f"{vdir}/obj")
            manifest.update(kind="object", cls=cls)
        else:
            raise TypeError(
                f"cannot store {type(obj).__name__}: return a DataFrame, Arrow table, dict or a RecStack "
                f"model"
            )
        # Publish: temp pointer renamed over CURRENT (atomic on local disks; one PUT on object stores).
        tmp = f"{d}/CURRENT.{version}.tmp"
        with self.fs.open_output_stream(tmp) as f:
            f.write(json.dumps(manifest).encode())
        self.fs.move(tmp, f"{d}/CURRENT")
        self._gc(d, version)
        return manifest

    def read(self, key: list[str], partition: str | None = None) -> Any:
        """Read the published version."""
        m = self.current(key, partition)
        if m is None:
            raise FileNotFoundError(
                f"no published version of {'/'.join(key)} [{partition or 'unpartitioned'}]"
            )
        vdir = f"{self._dir(key, partition)}/{m['version']}"
        if m["kind"] in ("dataframe", "arrow"):
            t = pq.read_table(f"{vdir}/data.parquet", filesystem=self.fs)
            return t.to_pandas() if m["kind"] == "dataframe" else t
        if m["kind"] == "json":
            with self.fs.open_input_stream(f"{vdir}/data.json") as f:
                return json.loads(f.read())
        module, _, name = m["cls"].rpartition(".")
        if not m["cls"].startswith(_ALLOWED_PREFIXES):
            raise TypeError(f"refusing to load {m['cls']}")
        cls = getattr(importlib.import_module(module), name)
        return self._load_object(cls, f"{vdir}/obj")

    def dataset(self, key: list[str], partition: str | None = None) -> ParquetDataset:
        """The published version of a table by reference (nothing is read)."""
        m = self.current(key, partition)
        if m is None or m.get("kind") not in ("dataframe", "arrow"):
            raise FileNotFoundError(f"no published table {'/'.join(key)} [{partition or 'unpartitioned'}]")
        path = f"{self._dir(key, partition)}/{m['version']}/data.parquet"
        uri = path if self.local else f"{self.scheme}://{path}"
        return ParquetDataset(uri, int(m.get("rows", 0)), m["version"])

    def path_of(self, key: list[str], partition: str | None = None) -> str | None:
        m = self.current(key, partition)
        return f"{self._dir(key, partition)}/{m['version']}" if m else None

    def _save_object(self, obj, dest: str) -> None:
        if self.local:
            obj.save(dest)
            return
        with tempfile.TemporaryDirectory() as tmp:
            obj.save(tmp)
            self.fs.create_dir(
                dest, recursive=True
            )  # hierarchical remote filesystems (HDFS) need it; S3 ignores it
            pafs.copy_files(
                tmp, dest, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs
            )

    def _load_object(self, cls, src: str):
        if self.local:
            return cls.load(src)
        tmp = tempfile.mkdtemp(prefix="recstack-")
        pafs.copy_files(src, tmp, source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem())
        return cls.load(tmp)

    def _gc(self, d: str, current: str) -> None:
        infos = self.fs.get_file_info(pafs.FileSelector(d))
        versions = sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)
        for old in versions[:-KEEP_VERSIONS]:
            if old != current:
                self.fs.delete_dir(f"{d}/{old}")
        for i in infos:  # stale temp pointers from crashed writers
            if i.base_name.endswith(".tmp") and current not in i.base_name:
                self.fs.delete_file(i.path)


class VersionedIOManager(ConfigurableIOManager):
    """Dagster IO manager over :class:`VersionedStore` (root: a folder or an object-store URI)."""

    root: str

    def _store(self) -> VersionedStore:
        return VersionedStore(self.root)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        part = context.asset_partition_key if context.has_asset_partitions else None
        store = self._store()
        key = list(context.asset_key.path)
        m = store.write(key, part, obj, {"run_id": context.run_id})
        md: dict[str, Any] = {
            "storage_version": m["version"],
            "storage_path": f"{store._dir(key, part)}/{m['version']}",
        }
        if "rows" in m:
            md["rows"] = m["rows"]
        context.add_output_metadata(md)

    def load_input(self, context: InputContext) -> Any:
        key = list(context.asset_key.path)
        if context.dagster_type.typing_type is ParquetDataset:  # by reference: the reader reads it
            part = context.asset_partition_key if context.has_asset_partitions else None
            return self._store().dataset(key, part)
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) == 1:
                return self._store().read(key, keys[0])
            return {k: self._store().read(key, k) for k in keys}
        return self._store().read(key, None)
