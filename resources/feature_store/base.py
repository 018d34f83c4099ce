"""The feature-store interface: HBase's data model without HBase.

Cells are addressed by ``(row, b"family:qualifier", timestamp)``; timestamps are milliseconds
(HBase's unit). Families carry ``max_versions`` and a TTL: a cell older than ``now - ttl`` is
invisible to every read, and only the newest ``max_versions`` cells of a column are kept. Writing
the same ``(row, column, timestamp)`` again overwrites the value, which is what makes real-time and
offline writers of the same event converge.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

RowCells = dict[bytes, tuple[bytes, int]]  # column -> (value, ts), newest version
Put = tuple[bytes, bytes, bytes, int]  # (row, column, value, ts)


@dataclass(frozen=True)
class FamilySpec:
    name: str
    max_versions: int = 1
    ttl_seconds: int | None = None  # None: cells never expire


@dataclass(frozen=True)
class TableSpec:
    name: str
    families: tuple[FamilySpec, ...] = field(default_factory=tuple)

    def family(self, name: str) -> FamilySpec:
        for f in self.families:
            if f.name == name:
                return f
        raise KeyError(f"table {self.name!r} has no column family {name!r}")


def salted_rowkey(entity_id: str, salt_chars: int = 2) -> bytes:
    """``<salt><id>``: a short hex salt from a hash of the id spreads writes over regions.

    The salt is deterministic, so one entity's row is still a single point lookup.
    """
    salt = hashlib.md5(entity_id.encode()).hexdigest()[:salt_chars]
    return f"{salt}{entity_id}".encode()


def entity_of(rowkey: bytes, salt_chars: int = 2) -> str:
    return rowkey[salt_chars:].decode()


def stable_int64(entity_id: str) -> int:
    """A stable non-negative int64 for an entity id (vector stores need integer ids)."""
    return (
        int.from_bytes(hashlib.blake2b(entity_id.encode(), digest_size=8).digest(), "big")
        & 0x7FFF_FFFF_FFFF_FFFF
    )


def split_column(column: bytes) -> tuple[bytes, bytes]:
    fam, sep, qual = column.partition(b":")
    if not sep:
        raise ValueError(f"column {column!r} is not 'family:qualifier'")
    return fam, qual


class FeatureStore(ABC):
    """Tables of cells with HBase semantics. Every backend passes ``tests/contract``."""

    # Whether a call leaves the process (a network round trip): the service then makes it from
    # a worker thread, not on its event loop.
    remote: bool = True

    @abstractmethod
    def create_table(self, spec: TableSpec) -> None:
        """Create ``spec`` if it does not exist (idempotent; an existing table keeps its settings)."""

    @abstractmethod
    def drop_table(self, name: str) -> None: ...

    @abstractmethod
    def tables(self) -> list[str]: ...

    @abstractmethod
    def table_spec(self, name: str) -> TableSpec: ...

    @abstractmethod
    def put_cells(self, table: str, cells: Iterable[Put]) -> int:
        """Write cells as one batch; returns the number written. Unknown families are rejected."""

    @abstractmethod
    def delete(self, table: str, row: bytes, columns: list[bytes] | None = None) -> None:
        """Delete every version of the given columns (or families, or the whole row)."""

    @abstractmethod
    def row(
        self,
        table: str,
        row: bytes,
        columns: list[bytes] | None = None,
        versions: int = 1,
        ts_min: int | None = None,
        ts_max: int | None = None,
    ) -> dict[bytes, list[tuple[bytes, int]]]:
        """Up to ``versions`` newest cells per column with ``ts_min <= ts < ts_max``, newest first."""

    def rows(
        self,
        table: str,
        rows: list[bytes],
        columns: list[bytes] | None = None,
        ts_min: int | None = None,
        ts_max: int | None = None,
    ) -> dict[bytes, dict[bytes, tuple[bytes, int]]]:
        """A multi-get: the newest visible cell per column of each row with ``ts_min <= ts <
        ts_max`` (a row with none is absent). One round trip where the backend has one; this
        default asks row by row."""
        out = {}
        for r in dict.fromkeys(rows):
            got = self.row(table, r, columns, 1, ts_min, ts_max)
            if got:
                out[r] = {c: v[0] for c, v in got.items()}
        return out

    @abstractmethod
    def scan(
        self,
        table: str,
        row_prefix: bytes | None = None,
        row_start: bytes | None = None,
        row_stop: bytes | None = None,
        columns: list[bytes] | None = None,
        ts_min: int | None = None,
        ts_max: int | None = None,
        limit: int | None = None,
        tag: bytes | None = None,
    ) -> Iterator[tuple[bytes, RowCells]]:
        """Rows in key order with the newest visible cell per column.

        ``columns`` holds families (``b"d"``) or columns (``b"d:q"``); ``tag`` is a column that
        must hold ``b"1"`` for the row to be returned (the target-population filter).
        """

    def close(self) -> None:  # noqa: B027 - an optional hook: stores without connections need nothing
        """Release connections."""
