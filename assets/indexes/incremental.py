"""Incremental updates of a served collection: new and changed entities upserted, deleted ones
deleted, in place, behind the same alias and version (no rebuild, no republish).

A change set is a profile frame (``entity_id`` and the profile fields) with a boolean
``deleted`` column. The vectors come from the encoder version the served collection was built
with, so updated rows live in the same space as the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from assets.indexes import milvus_index
from assets.ingest.entities import generate_profiles

log = logging.getLogger(__name__)

PROFILE_FIELDS = ("description", "location", "type", "tags")


def synthetic_profile_changes(
    existing_ids: np.ndarray, n_new: int = 5, n_changed: int = 5, n_deleted: int = 2, seed: int = 0
) -> pd.DataFrame:
    """A day's changes for the synthetic profiles: ``n_new`` entities with ids after the largest,
    ``n_changed`` existing ones with new profiles, ``n_deleted`` existing ones removed."""
    existing = np.sort(np.asarray(existing_ids, np.int64))
    rng = np.random.default_rng(seed)
    picked = rng.choice(existing, size=min(len(existing), n_changed + n_deleted), replace=False)
    changed, deleted = picked[:n_changed], picked[n_changed:]
    fresh = generate_profiles(n_new + len(changed), seed=seed + 1)
    fresh["entity_id"] = np.concatenate(
        [existing.max(initial=-1) + 1 + np.arange(n_new, dtype=np.int64), changed]
    )
    fresh["deleted"] = False
    gone = pd.DataFrame({"entity_id": deleted, "deleted": True})
    return pd.concat([fresh, gone], ignore_index=True)


def validate_changes(changes: pd.DataFrame) -> pd.DataFrame:
    """The change set with ``deleted`` filled in; ValueError for a missing id column, a repeated
    id or an upsert without a description."""
    if "entity_id" not in changes.columns:
        raise ValueError("profile changes need an entity_id column")
    out = changes.copy()
    out["deleted"] = out["deleted"].fillna(False).astype(bool) if "deleted" in out else False
    dup = out["entity_id"][out["entity_id"].duplicated()]
    if len(dup):
        raise ValueError(f"entity ids changed twice in one set: {dup.head(10).tolist()}")
    up = out[~out["deleted"]]
    if len(up) and ("description" not in up or up["description"].isna().any()):
        raise ValueError("every new or changed profile needs a description")
    return out


def apply_profile_changes(
    client, alias: str, encode: Callable[[pd.DataFrame], np.ndarray], changes: pd.DataFrame
) -> dict:
    """Upsert the new and changed profiles (encoded by ``encode``) into the collection ``alias``
    serves, and delete the deleted ones.

    Returns
    -------
    dict
        ``collection`` (unchanged), ``upserted``, ``deleted``, ``upserted_ids``,
        ``deleted_ids``, ``seconds``.

    Raises
    ------
    ValueError
        For a bad change set, or vectors whose dimension is not the collection's (the encoder
        changed: that needs a rebuild, not an upsert).
    """
    t0 = time.perf_counter()
    changes = validate_changes(changes)
    spec = milvus_index.served_spec(client, alias)
    name = milvus_index.serving_collection(client, alias)
    up = changes[~changes["deleted"]].reset_index(drop=True)
    gone = changes.loc[changes["deleted"], "entity_id"].to_numpy(np.int64)
    if len(up):
        fields = up[[c for c in PROFILE_FIELDS if c in up.columns]]
        vecs = np.asarray(encode(fields), np.float32)
        if vecs.shape != (len(up), spec.dim):
            raise ValueError(f"encoded {vecs.shape}, but {name} holds {spec.dim}-d vectors: rebuild instead")
        ids = up["entity_id"].to_numpy(np.int64)
        milvus_index.upsert(client, spec, ids, vecs, milvus_index.scalar_fields(up, ids))
    if len(gone):
        milvus_index.delete(client, spec, gone)
    secs = time.perf_counter() - t0
    log.info("%s (%s): upserted %d, deleted %d in %.2fs", alias, name, len(up), len(gone), secs)
    return {
        "collection": name,
        "upserted": int(len(up)),
        "deleted": int(len(gone)),
        "upserted_ids": up["entity_id"].astype(int).tolist(),
        "deleted_ids": gone.astype(int).tolist(),
        "seconds": round(secs, 3),
    }
