"""Dagster resources of the feature warehouse: the store (typed backend configs), the CRM source, the
export target."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Literal

import pyarrow.fs as pafs
from dagster import Config, ConfigurableResource
from pydantic import Field

from resources.feature_store.base import FeatureStore, TableSpec

_OPEN: dict[tuple, FeatureStore] = {}
_ENSURED: dict[tuple, set[str]] = {}


class EmbeddedConfig(Config):
    """The file-backed store with HBase semantics (SQLite in WAL mode): no server."""

    type: Literal["embedded"] = "embedded"
    path: str = Field(description="SQLite file of the store (created on first use)")


class HBaseConfig(Config):
    """HBase through its Thrift 1 gateway (happybase)."""

    type: Literal["hbase"] = "hbase"
    host: str = Field(description="HBase Thrift server host")
    port: int = 9090
    table_prefix: str = "recstack"


# A table of backends (as Feast's online stores): config type -> module and class, imported lazily
# so the embedded default never imports happybase.
BACKENDS: dict[str, str] = {
    "embedded": "resources.feature_store.embedded.EmbeddedStore",
    "hbase": "resources.feature_store.hbase.HBaseStore",
}


def deployment_backend() -> EmbeddedConfig | HBaseConfig:
    """This deployment's store for readers outside Dagster (the service): the embedded file under
    ``RECSTACK_HOME`` locally, the HBase gateway (``RECSTACK_HBASE_HOST``) in production."""
    from recstack import settings

    if settings.deployment() == "prod":
        return HBaseConfig(host=settings.hbase_host())
    return EmbeddedConfig(path=str(settings.home() / "feature_store" / "store.sqlite"))


def open_backend(config: EmbeddedConfig | HBaseConfig) -> FeatureStore:
    """A store for ``config``, from the table of backends."""
    module, _, name = BACKENDS[config.type].rpartition(".")
    return getattr(importlib.import_module(module), name).from_config(config)


class FeatureStoreResource(ConfigurableResource):
    """The feature store: ``backend`` is ``EmbeddedConfig`` (local) or ``HBaseConfig`` (production).

    ``mid_ttl_days`` / ``mid_versions`` are the MID family settings the warehouse creates its
    tables with (``open(tables)``).
    """

    backend: EmbeddedConfig | HBaseConfig = Field(discriminator="type")
    mid_ttl_days: int = 540
    mid_versions: int = 1

    def open(self, tables: Iterable[TableSpec] = ()) -> FeatureStore:
        """The process's store for this configuration (opened once); ``tables`` are ensured once."""
        key = (self.backend.model_dump_json(), self.mid_ttl_days, self.mid_versions)
        store = _OPEN.get(key)
        if store is None:
            store = _OPEN[key] = open_backend(self.backend)
            _ENSURED[key] = set()
        for spec in tables:
            if spec.name not in _ENSURED[key]:
                store.create_table(spec)
                _ENSURED[key].add(spec.name)
        return store


class CrmSourceResource(ConfigurableResource):
    """Where CRM events and opportunities come from: the seeded simulator, or daily files.

    ``events_path`` / ``opportunities_path`` are templates with ``{date}`` (``yyyy-mm-dd``) for CSV,
    Parquet or JSON-lines files; empty means the simulator (sized by ``n_users``,
    ``n_opportunities``, ``seed``).
    """

    n_users: int = 2000
    n_opportunities: int = 1500
    seed: int = 11
    events_path: str = ""
    opportunities_path: str = ""

    def events_file(self, day: date) -> str | None:
        return self.events_path.format(date=day.isoformat()) if self.events_path else None

    def opportunities_file(self, day: date) -> str | None:
        return self.opportunities_path.format(date=day.isoformat()) if self.opportunities_path else None


class WarehouseLayoutResource(ConfigurableResource):
    """Where the warehouse's layout is read from: a data file naming the business lines, dimensions,
    base event types, the longest allowed window and the computations (see
    ``assets/features/data/warehouse.yaml``). Empty: that packaged default. Adding a line, an event
    type, a dimension or a longer window is an edit of that file and of the feature dictionary."""

    path: str = ""


class ExportResource(ConfigurableResource):
    """Where exported files (LibSVM) go: a folder or any ``pyarrow.fs`` URI."""

    root: str

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        if "://" in self.root:
            fs, base = pafs.FileSystem.from_uri(self.root)
        else:
            fs, base = pafs.LocalFileSystem(), str(Path(self.root).absolute())
        return fs, base.rstrip("/")

    def read_text(self, relpath: str) -> str | None:
        """The text of ``relpath`` under the root, or None when there is no such file."""
        fs, base = self._fs()
        path = f"{base}/{relpath}"
        if fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with fs.open_input_stream(path) as f:
            return f.read().decode()

    def texts(self, folder: str, suffix: str = ".txt") -> dict[str, str]:
        """``stem -> text`` of every ``*<suffix>`` file directly in ``folder`` under the root."""
        fs, base = self._fs()
        sel = pafs.FileSelector(f"{base}/{folder}", allow_not_found=True)
        out = {}
        for info in fs.get_file_info(sel):
            if info.type == pafs.FileType.File and info.base_name.endswith(suffix):
                with fs.open_input_stream(info.path) as f:
                    out[info.base_name.removesuffix(suffix)] = f.read().decode()
        return dict(sorted(out.items()))

    def write_text(self, relpath: str, text: str) -> str:
        """Write atomically (temp object, then rename); returns the final path."""
        fs, base = self._fs()
        dest = f"{base}/{relpath}"
        fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
        tmp = dest + ".tmp"
        with fs.open_output_stream(tmp) as f:
            f.write(text.encode())
        fs.move(tmp, dest)
        return dest
