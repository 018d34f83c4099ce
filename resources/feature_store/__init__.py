"""Feature store with HBase semantics: one interface, one module per backend.

- :mod:`.base` — the interface (:class:`FeatureStore`), table/family specs, rowkey helpers.
- :mod:`.embedded` — the default: SQLite in WAL mode on local disk, no server.
- :mod:`.hbase` — HBase through happybase (Thrift).
The wire tests serve the HBase Thrift protocol from any FeatureStore: ``tests/support/thrift_gateway.py``.
"""

from resources.feature_store.base import FamilySpec, FeatureStore, TableSpec, salted_rowkey, stable_int64

__all__ = ["FamilySpec", "FeatureStore", "TableSpec", "salted_rowkey", "stable_int64"]
