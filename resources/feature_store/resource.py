"""Dagster resources of the feature warehouse: the store, the CRM source, the export target."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
from dagster import ConfigurableResource

from resources.feature_store.base import FeatureStore

_OPEN: dict[tuple, FeatureStore] = {}


class FeatureStoreResource(ConfigurableResource):
    """``backend="embedded"`` (SQLite file at ``path``) or ``"hbase"`` (Thrift at ``host:port``).

    Tables are created on first use with the TTL and VERSIONS given here.
    """

    backend: str = "embedded"
    path: str = ""
    host: str = ""
    port: int = 9090
    table_prefix: str = "recstack"
    mid_ttl_days: int = 540
    mid_versions: int = 1

    def open(self) -> FeatureStore:
        """The process's store for this configuration (opened once, tables ensured)."""
        key = (self.backend, self.path, self.host, self.port, self.table_prefix, self.mid_ttl_days, self.mid_versions)
        store = _OPEN.get(key)
        if store is None:
            if self.backend == "embedded":
                from resources.feature_store.embedded import EmbeddedStore

                store = EmbeddedStore(self.path)
            elif self.backend == "hbase":
                from resources.feature_store.hbase import HBaseStore

                store = HBaseStore(self.host, self.port, table_prefix=self.table_prefix)
            else:
                raise ValueError(f"unknown feature store backend {self.backend!r} (embedded, hbase)")
            from assets.features.layers import table_specs

            for spec in table_specs(self.mid_ttl_days, self.mid_versions).values():
                store.create_table(spec)
            _OPEN[key] = store
        return store


class CrmSourceResource(ConfigurableResource):
    """Where CRM events and opportunities come from: the seeded simulator, or daily files.

    ``events_path`` / ``opportunities_path`` are templates with ``{date}`` (``yyyy-mm-dd``) for CSV,
    Parquet or JSON-lines files; empty means the simulator.
    """

    n_users: int = 2000
    n_opportunities: int = 1500
    seed: int = 11
    events_path: str = ""
    opportunities_path: str = ""

    def _spec(self):
        from assets.features.crm import CrmSpec

        return CrmSpec(n_users=self.n_users, n_opportunities=self.n_opportunities, seed=self.seed)

    def events(self, day: date) -> pd.DataFrame:
        from assets.features.crm import daily_events, population

        if self.events_path:
            return read_table_file(self.events_path.format(date=day.isoformat()))
        return daily_events(day, self._spec(), population(self._spec()))

    def opportunities(self, day: date) -> pd.DataFrame:
        """``opp_id, user_ids, phone_ids, converted, owner`` as of ``day``."""
        from assets.features.crm import owner_snapshot, population

        if self.opportunities_path:
            return read_table_file(self.opportunities_path.format(date=day.isoformat()))
        pop = population(self._spec())
        opps = pop["opportunities"].drop(columns=["owner0"])
        return opps.merge(owner_snapshot(day, self._spec(), pop), on="opp_id")


def read_table_file(path: str) -> pd.DataFrame:
    """CSV, Parquet or JSON lines by extension (event files keep every column as given)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input file not found: {p}")
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix in (".jsonl", ".json"):
        return pd.read_json(p, lines=True, dtype=False)
    return pd.read_csv(p, dtype=str, keep_default_na=False).pipe(_csv_types)


def _csv_types(df: pd.DataFrame) -> pd.DataFrame:
    # CSV has no types: leave `value` as text so the row checks can name non-numeric values.
    for c in ("user_ids", "phone_ids"):
        if c in df.columns:
            df[c] = df[c].str.split("|")
    if "converted" in df.columns:
        df["converted"] = pd.to_numeric(df["converted"])
    return df


class ExportResource(ConfigurableResource):
    """Where exported files (LibSVM) go: a folder or any ``pyarrow.fs`` URI."""

    root: str

    def write_text(self, relpath: str, text: str) -> str:
        """Write atomically (temp object, then rename); returns the final path."""
        if "://" in self.root:
            fs, base = pafs.FileSystem.from_uri(self.root)
        else:
            fs, base = pafs.LocalFileSystem(), str(Path(self.root).absolute())
        dest = f"{base.rstrip('/')}/{relpath}"
        fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
        tmp = dest + ".tmp"
        with fs.open_output_stream(tmp) as f:
            f.write(text.encode())
        fs.move(tmp, dest)
        return dest
