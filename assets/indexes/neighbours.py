"""One nearest-neighbour interface, two backends: an in-process Faiss index or a Milvus alias.

Recall code (similar entities, lookalike, KB search) reads vectors only through
:class:`Neighbours`, so the same functions answer from a :class:`~assets.indexes.faiss_index.VectorIndex`
loaded into the process or from a published Milvus collection that the process never loads.

Scalar filters for Milvus are built by :func:`filter_expression` from validated values only:
field names come from a fixed list, strings are quoted with every quote and backslash escaped,
ids are integers. No request text is ever spliced into an expression unquoted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from assets.indexes.milvus_index import CollectionSpec, search, served_spec

# Request field -> Milvus scalar field (see milvus_index.SCALARS).
FILTER_FIELDS = {"location": "region", "region": "region", "type": "type", "line": "line"}


@runtime_checkable
class Neighbours(Protocol):
    """What recall needs from a vector store.

    ``native_filters`` says whether :meth:`search` applies ``filters`` itself (Milvus) or the
    caller must filter over-fetched candidates (Faiss).
    """

    native_filters: bool

    @property
    def size(self) -> int:
        """Vectors held."""

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``ids`` are held."""

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (all held), one row each, in the given order."""

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(held, vectors)``: the mask of ``ids`` held and the vectors of those, in order (one
        round trip where the store is remote)."""

    def search(
        self, queries: np.ndarray, k: int = 10, filters: Mapping | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ``(ids, scores)`` per query, ``-1`` / ``-inf`` padded."""


def _literal(value) -> str:
    """A Milvus string literal: double-quoted, backslashes and quotes escaped, one line."""
    if not isinstance(value, str):
        raise TypeError(f"filter values are strings, not {type(value).__name__}")
    return json.dumps(value, ensure_ascii=False)  # escapes \\ and " and control characters


def filter_expression(filters: Mapping | None = None, ids: Sequence[int] | None = None) -> str:
    """A Milvus boolean expression over the scalar fields, from validated values.

    Parameters
    ----------
    filters : mapping, optional
        Request field (``location``, ``region``, ``type``, ``line``) -> a string or a list of
        strings (any of them matches).
    ids : sequence of int, optional
        Restrict to these primary keys.

    Returns
    -------
    str
        ``""`` for no restriction, else clauses joined by ``and``, e.g.
        ``region in ["北京"] and id in [3, 5]``.

    Raises
    ------
    ValueError
        For a field that is not filterable.
    """
    clauses = []
    for name, want in (filters or {}).items():
        if name not in FILTER_FIELDS:
            raise ValueError(f"unknown filter field {name!r} (filterable: {sorted(FILTER_FIELDS)})")
        values = [want] if isinstance(want, str) else list(want)
        clauses.append(f"{FILTER_FIELDS[name]} in [{', '.join(_literal(v) for v in values)}]")
    if ids is not None:
        clauses.append(f"id in [{', '.join(str(int(i)) for i in ids)}]")
    return " and ".join(clauses)


class MilvusNeighbours:
    """:class:`Neighbours` over the collection a Milvus alias serves (queried through the alias,
    so a republish or an upsert is seen without reloading anything here).

    Parameters
    ----------
    client : pymilvus.MilvusClient
    alias : str
        The serving alias.
    spec : CollectionSpec, optional
        Search parameters; by default read from the served collection (its tuned ``nprobe``).
    """

    native_filters = True

    def __init__(self, client, alias: str, spec: CollectionSpec | None = None):
        self.client, self.alias = client, alias
        self.spec = spec or served_spec(client, alias)

    @property
    def size(self) -> int:
        res = self.client.query(self.alias, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def contains(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        if not ids.size:
            return np.zeros(0, bool)
        got = self.client.get(self.alias, ids=[int(i) for i in np.unique(ids)], output_fields=["id"])
        return np.isin(ids, np.array([int(r["id"]) for r in got], np.int64))

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, np.int64)
        if not ids.size:
            return np.zeros(0, bool), np.zeros((0, self.spec.dim), np.float32)
        got = self.client.get(self.alias, ids=[int(i) for i in np.unique(ids)], output_fields=["vector"])
        by_id = {int(r["id"]): r["vector"] for r in got}
        held = np.array([int(i) in by_id for i in ids], bool)
        vecs = np.asarray([by_id[int(i)] for i in ids[held]], np.float32).reshape(-1, self.spec.dim)
        return held, vecs

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        held, vecs = self.lookup(ids)
        if not held.all():
            raise KeyError(f"not in {self.alias}: {np.asarray(ids)[~held][:10].tolist()}")
        return vecs

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        filters: Mapping | None = None,
        ids: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return search(self.client, self.alias, queries, k, self.spec, filter=filter_expression(filters, ids))
