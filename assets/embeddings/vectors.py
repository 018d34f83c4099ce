"""The vector contract shared by every embedding family and index.

Vectors travel as an Arrow table with columns ``id`` (int64) and ``vector``
(``fixed_size_list<float32>[dim]``); schema metadata records ``dim``, ``metric``, whether the
rows are L2-normalised, and the MLflow model version that produced them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

_META_KEY = b"recstack.vectors"


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation; all-zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, np.maximum(norms, eps), dtype=np.float32)


@dataclass
class VectorMeta:
    """What a vector table was made from."""

    metric: str = "ip"  # "ip" (inner product on unit vectors = cosine) or "l2"
    normalized: bool = True
    model_name: str = ""
    model_version: str = ""
    extra: dict = field(default_factory=dict)


def vectors_to_table(ids: np.ndarray, vectors: np.ndarray, meta: VectorMeta) -> pa.Table:
    """Build a contract table. Normalises when ``meta.metric == "ip"`` and ``meta.normalized``."""
    ids = np.asarray(ids, dtype=np.int64)
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    if vecs.ndim != 2 or vecs.shape[0] != ids.shape[0]:
        raise ValueError(f"vectors shape {vecs.shape} does not match {ids.shape[0]} ids")
    if not np.isfinite(vecs).all():
        raise ValueError("vectors contain NaN or infinite values")
    if meta.metric == "ip" and meta.normalized:
        vecs = l2_normalize(vecs)
    dim = vecs.shape[1]
    col = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), type=pa.float32()), dim)
    md = {
        "dim": dim,
        "metric": meta.metric,
        "normalized": meta.normalized,
        "model_name": meta.model_name,
        "model_version": meta.model_version,
        **meta.extra,
    }
    schema = pa.schema(
        [("id", pa.int64()), ("vector", pa.list_(pa.float32(), dim))], metadata={_META_KEY: json.dumps(md)}
    )
    return pa.Table.from_arrays([pa.array(ids), col], schema=schema)


def table_to_vectors(table: pa.Table) -> tuple[np.ndarray, np.ndarray, dict]:
    """Inverse of :func:`vectors_to_table`: ``(ids, vectors float32 (n, dim), metadata)``."""
    md = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    col = table.column("vector").combine_chunks()
    dim = col.type.list_size
    vecs = col.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)
    ids = table.column("id").to_numpy().astype(np.int64, copy=False)
    return ids, vecs, md


def vector_profile(table: pa.Table) -> pd.DataFrame:
    """One row per vector (``id``, ``dim``, ``norm``, ``finite``, ``unit``) for the ``vectors`` suite.

    ``unit`` is whether the table promises unit vectors (inner-product metric, normalised).
    """
    import pandas as pd

    ids, vecs, md = table_to_vectors(table)
    return pd.DataFrame(
        {
            "id": ids,
            "dim": vecs.shape[1],
            "norm": np.linalg.norm(vecs, axis=1),
            "finite": np.isfinite(vecs).all(axis=1),
            "unit": bool(md.get("metric") == "ip" and md.get("normalized", False)),
        }
    )
