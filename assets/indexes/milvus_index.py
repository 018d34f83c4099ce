"""Milvus collections behind a serving alias: versioned builds, verified, then switched.

Every build writes a new collection ``{alias}__v{n}``: insert, flush, index, load, then verify at
*Strong* consistency (row count, and recall@k of a sample against exact search) before the alias
moves to it; the collection two versions back is dropped. Readers of the alias therefore only
ever see a complete, loaded, verified index: never a partial or empty one. (A Milvus server's
default consistency is bounded staleness: a search through a just-switched alias can return no
hits unless the new collection was flushed, loaded and read strongly first.)

Collections have an int64 primary key ``id``, the ``vector`` field and scalar fields ``line``
(business line; also the partition), ``region``, ``type`` and ``created_at`` for filtered search.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

MilvusIndexType = Literal["IVF_SQ8", "IVF_FLAT", "HNSW", "FLAT"]
# Milvus Lite accepts other types and then silently falls back to brute force: validate here.
SUPPORTED_INDEX_TYPES = ("IVF_SQ8", "IVF_FLAT", "HNSW", "FLAT")
SCALARS = ("line", "region", "type")
BATCH = 5_000


@dataclass(frozen=True)
class CollectionSpec:
    """A served collection: its alias, vectors and index.

    Attributes
    ----------
    alias : str
        The serving alias; versions are ``{alias}__v{n}``.
    dim : int
        Vector dimension.
    metric : {"IP", "L2", "COSINE"}
        Similarity of the vectors (inner product for unit vectors).
    index_type : {"IVF_SQ8", "IVF_FLAT", "HNSW", "FLAT"}
        The index; ``IVF_SQ8`` follows the lookalike practice.
    nlist : int
        IVF lists; 0: from the row count, about 4·√n as Milvus recommends (:func:`auto_nlist`).
    nprobe : int
        IVF lists searched per query; 0: the smallest power of two whose recall@10 on the
        verification sample (self-matches removed) reaches ``target_recall``.
    target_recall : float
        What an automatic ``nprobe`` must reach.
    hnsw_m, ef_construction : int
        HNSW graph degree and build-time candidate list.
    ef : int
        HNSW search-time candidate list.
    partitions : tuple of str
        Partitions created with the collection (business lines).
    """

    alias: str
    dim: int
    metric: Literal["IP", "L2", "COSINE"] = "IP"
    index_type: MilvusIndexType = "IVF_SQ8"
    nlist: int = 0
    nprobe: int = 0
    target_recall: float = 0.95
    hnsw_m: int = 16
    ef_construction: int = 200
    ef: int = 64
    partitions: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.index_type not in SUPPORTED_INDEX_TYPES:
            raise ValueError(
                f"index type {self.index_type!r} is not supported here ({', '.join(SUPPORTED_INDEX_TYPES)})"
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.alias):
            raise ValueError(f"alias {self.alias!r}: letters, digits and underscores only")

    def index_params(self) -> dict:
        p = {"nlist": self.nlist} if self.index_type.startswith("IVF") else {}
        if self.index_type == "HNSW":
            p = {"M": self.hnsw_m, "efConstruction": self.ef_construction}
        return {"index_type": self.index_type, "metric_type": self.metric, "params": p}

    def search_params(self) -> dict:
        p = (
            {"nprobe": self.nprobe}
            if self.index_type.startswith("IVF")
            else {"ef": self.ef}
            if self.index_type == "HNSW"
            else {}
        )
        return {"metric_type": self.metric, "params": p}


def auto_nlist(n: int) -> int:
    """IVF lists for ``n`` rows: 4·√n rounded to a power of two, in [1, 65536] and at most ``n``."""
    if n <= 1:
        return 1
    return int(min(65536, n, 2 ** round(math.log2(4 * math.sqrt(n)))))


SPEC_PROPERTY = "recstack.spec"  # collection property: the CollectionSpec it was built and tuned with


def served_spec(client, alias: str) -> CollectionSpec:
    """The :class:`CollectionSpec` (nlist and tuned nprobe resolved) the collection behind
    ``alias`` was published with."""
    name = serving_collection(client, alias)
    if name is None:
        raise LookupError(f"Milvus alias {alias!r} is not published")
    props = client.describe_collection(name).get("properties") or {}
    if SPEC_PROPERTY not in props:
        raise LookupError(f"{name} carries no {SPEC_PROPERTY} property: republish it")
    spec = json.loads(props[SPEC_PROPERTY])
    return CollectionSpec(**{**spec, "partitions": tuple(spec.get("partitions", ()))})


def collection_name(alias: str, version: int) -> str:
    return f"{alias}__v{version}"


def versions(client, alias: str) -> list[int]:
    """Versions of ``alias``'s collections that exist, ascending."""
    pat = re.compile(rf"^{re.escape(alias)}__v(\d+)$")
    return sorted(int(m.group(1)) for c in client.list_collections() if (m := pat.match(c)))


def serving_collection(client, alias: str) -> str | None:
    """The collection ``alias`` points at, or None."""
    # Ask first: describe_alias on a missing alias makes pymilvus log an ERROR with a traceback
    # (the first publish of every alias would print one).
    if alias not in client.list_aliases().get("aliases", []):
        return None
    return client.describe_alias(alias).get("collection_name")


def create_collection(client, name: str, spec: CollectionSpec) -> None:
    """The schema (id, vector, scalars), one partition per business line, and the index."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=spec.dim)
    for s in SCALARS:
        schema.add_field(s, DataType.VARCHAR, max_length=128)
    schema.add_field("created_at", DataType.INT64)
    client.create_collection(name, schema=schema)
    for p in spec.partitions:
        client.create_partition(name, _partition(p))


def _partition(line: str) -> str:
    return f"line_{re.sub(r'[^A-Za-z0-9_]', '_', str(line))}"


def scalar_fields(frame: pd.DataFrame | None, ids) -> pd.DataFrame | None:
    """``line``, ``region``, ``type`` for each id from an entity frame (``entity_id``, ``location``,
    ``type``, ``line``)."""
    if frame is None:
        return None
    f = frame.set_index("entity_id").reindex(ids)
    return pd.DataFrame(
        {
            "line": f["line"].fillna("").to_numpy() if "line" in f else "",
            "region": f["location"].fillna("").to_numpy() if "location" in f else "",
            "type": f["type"].fillna("").to_numpy() if "type" in f else "",
        }
    )


def rows(
    ids: np.ndarray, vectors: np.ndarray, scalars: pd.DataFrame | None = None, now: int | None = None
) -> list[dict]:
    """Insertable rows; missing scalars are empty strings, ``created_at`` defaults to now."""
    n = len(ids)
    sc = scalars if scalars is not None else pd.DataFrame(index=range(n))
    cols = {s: (sc[s].astype(str).to_numpy() if s in sc else np.full(n, "", dtype=object)) for s in SCALARS}
    created = (
        sc["created_at"].to_numpy(np.int64)
        if "created_at" in sc
        else np.full(n, now or int(time.time()), np.int64)
    )
    return [
        {
            "id": int(ids[i]),
            "vector": vectors[i].tolist(),
            **{s: str(cols[s][i]) for s in SCALARS},
            "created_at": int(created[i]),
        }
        for i in range(n)
    ]


def write(
    client,
    name: str,
    spec: CollectionSpec,
    ids: np.ndarray,
    vectors: np.ndarray,
    scalars: pd.DataFrame | None = None,
    upsert: bool = False,
) -> int:
    """Insert (or upsert) in batches of ``BATCH`` rows, each into its business line's partition when
    partitioned. Rows are built one batch at a time: the vectors are never copied whole into
    Python objects."""
    op = client.upsert if upsert else client.insert
    now = int(time.time())
    for a in range(0, len(ids), BATCH):
        sc = scalars.iloc[a : a + BATCH].reset_index(drop=True) if scalars is not None else None
        groups: dict[str, list[dict]] = {}
        for r in rows(ids[a : a + BATCH], vectors[a : a + BATCH], sc, now):
            groups.setdefault(
                _partition(r["line"]) if spec.partitions and r["line"] in spec.partitions else "", []
            ).append(r)
        for part, rs in groups.items():
            op(name, rs, partition_name=part)
    return len(ids)


def count(client, name: str) -> int:
    """Rows visible at Strong consistency."""
    res = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(res[0]["count(*)"])


def search(
    client,
    collection: str,
    queries: np.ndarray,
    k: int,
    spec: CollectionSpec,
    filter: str = "",
    partitions: list[str] | None = None,
    consistency: str = "Bounded",
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ``(ids, scores)`` per query, ``-1`` / ``-inf`` padded; ``filter`` is a Milvus boolean
    expression over the scalar fields (``line == "01" and id in [1, 2]``)."""
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    hits = client.search(
        collection,
        data=q.tolist(),
        limit=k,
        filter=filter,
        search_params=spec.search_params(),
        partition_names=[_partition(p) for p in partitions] if partitions else None,
        output_fields=[],
        consistency_level=consistency,
    )
    ids = np.full((len(q), k), -1, np.int64)
    scores = np.full((len(q), k), -np.inf, np.float32)
    for r, hs in enumerate(hits):
        for j, h in enumerate(hs[:k]):
            ids[r, j] = int(h["id"])
            scores[r, j] = float(h["distance"])
    return ids, scores


def _exact(vectors: np.ndarray, queries: np.ndarray, k: int, metric: str) -> np.ndarray:
    from assets.indexes.faiss_tuning import exact_neighbors

    return exact_neighbors(vectors, queries, k, "ip" if metric in ("IP", "COSINE") else "l2")


def _without_self(found: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    from assets.indexes.faiss_tuning import drop_self

    return drop_self(found, self_ids, k)


def _tune_nprobe(spec: CollectionSpec, recall_with, plateau: float = 0.005) -> CollectionSpec:
    """The smallest power-of-two ``nprobe`` (up to ``nlist``) whose recall reaches the target; where
    none does (quantisation caps it), the smallest within ``plateau`` of the best reached, not a
    scan of every list."""
    curve = {}
    nprobe = 1
    while True:
        curve[nprobe] = recall_with(replace(spec, nprobe=nprobe))
        if curve[nprobe] >= spec.target_recall:
            return replace(spec, nprobe=nprobe)
        if nprobe >= spec.nlist:
            break
        nprobe = min(spec.nlist, nprobe * 2)
    best = max(curve.values())
    return replace(spec, nprobe=min(p for p, r in curve.items() if r >= best - plateau))


VERIFIED = "recstack.verified"  # collection property: set once a build passed verification


def is_verified(client, name: str) -> bool:
    """True when ``name`` passed :func:`publish`'s verification (a property on the collection)."""
    return VERIFIED in (client.describe_collection(name).get("properties") or {})


def verified_versions(client, alias: str) -> list[int]:
    """Versions of ``alias`` that passed verification, ascending (half-built ones are left out)."""
    return [v for v in versions(client, alias) if is_verified(client, collection_name(alias, v))]


def drop_unverified(client, alias: str) -> list[int]:
    """Drop the builds a killed or failed publish left behind (never the one the alias serves)."""
    serving = serving_collection(client, alias)
    dropped = []
    for v in versions(client, alias):
        name = collection_name(alias, v)
        if name != serving and not is_verified(client, name):
            client.drop_collection(name)
            dropped.append(v)
    if dropped:
        log.info("%s: dropped unverified build(s) %s left by an interrupted publish", alias, dropped)
    return dropped


def _switch(client, alias: str, name: str) -> str | None:
    previous = serving_collection(client, alias)
    if previous is None:
        client.create_alias(name, alias)
    else:
        client.alter_alias(name, alias)
    return previous


def publish(
    client,
    spec: CollectionSpec,
    ids: np.ndarray,
    vectors: np.ndarray,
    scalars: pd.DataFrame | None = None,
    recall_k: int = 10,
    recall_sample: int = 200,
    min_recall: float = 0.8,
    keep: int = 2,
    seed: int = 0,
) -> dict:
    """Build ``spec.alias``'s next version, verify it, switch the alias to it, keep ``keep`` verified
    versions.

    Parameters
    ----------
    client : pymilvus.MilvusClient
        Milvus Lite or a server.
    spec : CollectionSpec
        Alias, dimension, metric, index and scalar fields.
    ids, vectors : ndarray
        int64 ids and their float32 vectors.
    scalars : DataFrame, optional
        Scalar fields per id (``line``, ``region``, ``type``, ``created_at``).
    recall_k, recall_sample, min_recall :
        Verification: recall@``recall_k`` of ``recall_sample`` stored vectors against exact
        search must reach ``min_recall``, and the row count must match, at Strong consistency.
    keep : int
        Verified versions kept (the served one and the rollback).
    seed : int
        Seed of the verification sample.

    Returns
    -------
    dict
        ``alias``, ``collection``, ``version``, ``rows``, ``recall@k``, ``dropped``, timings.

    Raises
    ------
    RuntimeError
        When verification fails; the new collection is dropped and the alias still points at the
        previous good version.

    Notes
    -----
    A build is marked verified (a collection property) only after its checks pass, and only a
    verified build is served or kept. A publish killed mid-write leaves an unverified collection;
    the next publish drops it first, and retention counts verified versions only, so the last
    good version is never dropped in favour of a half-built one.
    """
    ids = np.asarray(ids, dtype=np.int64)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if spec.index_type.startswith("IVF") and spec.nlist <= 0:
        spec = replace(spec, nlist=auto_nlist(len(x)))
    cleaned = drop_unverified(client, spec.alias)
    version = max(versions(client, spec.alias) + cleaned, default=0) + 1
    name = collection_name(spec.alias, version)
    t0 = time.perf_counter()
    create_collection(client, name, spec)
    try:
        write(client, name, spec, ids, x, scalars)
        client.flush(name)
        ip = client.prepare_index_params()
        ip.add_index("vector", **spec.index_params())
        client.create_index(name, ip)
        client.load_collection(name)
        n = count(client, name)
        if n != len(ids):
            raise RuntimeError(f"{name}: {n} rows visible after loading, expected {len(ids)}")
        rng = np.random.default_rng(seed)
        qi = np.sort(rng.choice(len(x), size=min(recall_sample, len(x)), replace=False))
        k = max(1, min(recall_k, len(x) - 1))
        truth = _without_self(ids[_exact(x, x[qi], k + 1, spec.metric)], ids[qi], k)

        def recall_with(s: CollectionSpec) -> float:
            got, _ = search(client, name, x[qi], k + 1, s, consistency="Strong")
            found = _without_self(got, ids[qi], k)
            return float(np.mean([np.intersect1d(a, b[b >= 0]).size / k for a, b in zip(truth, found)]))

        if spec.index_type.startswith("IVF") and spec.nprobe <= 0:
            spec = _tune_nprobe(spec, recall_with)
        recall = recall_with(spec)
        if recall < min_recall:
            raise RuntimeError(f"{name}: recall@{k} {recall:.3f} against exact search is below {min_recall}")
        client.alter_collection_properties(
            name,
            properties={
                VERIFIED: str(int(time.time())),
                "recstack.rows": str(n),
                SPEC_PROPERTY: json.dumps({**asdict(spec), "partitions": list(spec.partitions)}),
            },
        )
    except Exception:
        client.drop_collection(name)
        raise
    previous = _switch(client, spec.alias, name)
    dropped = []
    for v in verified_versions(client, spec.alias)[:-keep] if keep > 0 else []:
        client.drop_collection(collection_name(spec.alias, v))
        dropped.append(v)
    secs = time.perf_counter() - t0
    log.info(
        "published %s -> %s (%d rows, recall@%d %.3f) in %.1fs; dropped %s",
        spec.alias,
        name,
        n,
        k,
        recall,
        secs,
        dropped,
    )
    return {
        "alias": spec.alias,
        "collection": name,
        "version": version,
        "previous": previous,
        "rows": n,
        f"recall@{k}": recall,
        "dropped_versions": sorted(cleaned + dropped),
        "index_type": spec.index_type,
        "nlist": spec.nlist,
        "nprobe": spec.nprobe,
        "publish_seconds": round(secs, 2),
    }


def rollback(client, alias: str) -> str:
    """Point ``alias`` at the newest verified version older than the one it serves; returns its name."""
    serving = serving_collection(client, alias)
    current = int(serving.rsplit("__v", 1)[1]) if serving else None
    older = [v for v in verified_versions(client, alias) if current is None or v < current]
    if not older:
        raise RuntimeError(f"alias {alias!r}: no verified version older than {serving!r} to roll back to")
    name = collection_name(alias, older[-1])
    _switch(client, alias, name)
    return name


def upsert(
    client, spec: CollectionSpec, ids: np.ndarray, vectors: np.ndarray, scalars: pd.DataFrame | None = None
) -> int:
    """Incremental update of the serving collection: insert or replace rows by id."""
    name = serving_collection(client, spec.alias)
    if name is None:
        raise RuntimeError(f"alias {spec.alias!r} is not published yet")
    return write(
        client, name, spec, np.asarray(ids, np.int64), np.asarray(vectors, np.float32), scalars, upsert=True
    )


def delete(client, spec: CollectionSpec, ids: np.ndarray) -> None:
    """Delete rows of the serving collection by id."""
    name = serving_collection(client, spec.alias)
    if name is None:
        raise RuntimeError(f"alias {spec.alias!r} is not published yet")
    client.delete(name, ids=[int(i) for i in ids])
