"""The day's entity profile changes, applied to the served Milvus collection in place."""

from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd

from assets.indexes.incremental import apply_profile_changes, synthetic_profile_changes
from assets.ingest.loaders import InputError
from recstack import names
from resources.milvus import MilvusResource
from resources.mlflow_tracking import MlflowResource
from resources.retries import EXTERNAL_RETRY, transient_only


class EntityProfileChangesConfig(dg.Config):
    """Where the day's changes come from: ``synthetic`` (a few new, changed and deleted
    entities), ``file`` (CSV, Parquet or JSON lines of profiles with an optional boolean
    ``deleted`` column) or ``none``."""

    source: Literal["synthetic", "file", "none"] = "synthetic"
    path: str = ""
    n_new: int = 5
    n_changed: int = 5
    n_deleted: int = 2
    seed: int = 0


def read_changes(config: EntityProfileChangesConfig, existing_ids: np.ndarray) -> pd.DataFrame:
    """The change set the config names (empty for ``none``)."""
    if config.source == "none":
        return pd.DataFrame({"entity_id": pd.Series([], dtype="int64"), "deleted": pd.Series([], dtype=bool)})
    if config.source == "synthetic":
        return synthetic_profile_changes(
            existing_ids, config.n_new, config.n_changed, config.n_deleted, config.seed
        )
    from assets.ingest.entities import load_profiles_file
    from assets.ingest.loaders import read_table

    raw = read_table(config.path)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    out = load_profiles_file(config.path)
    flag = raw["deleted"] if "deleted" in raw else pd.Series(False, index=raw.index)
    out["deleted"] = flag.astype(str).str.strip().str.lower().isin(["1", "true", "yes"]).to_numpy()
    return out


@dg.asset(
    kinds={"milvus"},
    ins={
        "published": dg.AssetIn(names.MILVUS_COLLECTION_ENTITIES),
        "profiles": dg.AssetIn(names.ENTITY_PROFILES),
    },
    retry_policy=EXTERNAL_RETRY,
)
@transient_only
def entity_profile_changes(
    context: dg.AssetExecutionContext,
    config: EntityProfileChangesConfig,
    published: dict,
    profiles: pd.DataFrame,
    milvus: MilvusResource,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """New and changed entity profiles upserted into the served entity collection, deleted ones
    deleted, encoded by the entity-vector model version the collection was built from: the
    service answers with them at once, with no rebuild and the collection version unchanged."""
    try:
        changes = read_changes(config, profiles["entity_id"].to_numpy(np.int64))
    except InputError as e:
        raise e.failure() from None
    version = published["vectors_model_version"]
    model = mlflow_tracking.load_pyfunc(names.ENTITY_MODEL, version)
    info = apply_profile_changes(
        milvus.client(), names.MILVUS_ENTITIES, lambda df: np.asarray(model.predict(df), np.float32), changes
    )
    if info["collection"] != published["collection"]:
        context.log.warning("the alias moved to %s since this run published", info["collection"])
    return dg.Output(
        {**info, "encoder_version": version},
        metadata={
            "collection": info["collection"],
            "upserted": info["upserted"],
            "deleted": info["deleted"],
            "encoder": f"{names.ENTITY_MODEL} v{version}",
            "seconds": info["seconds"],
            "changed_ids": dg.MetadataValue.json(
                {"upserted": info["upserted_ids"][:50], "deleted": info["deleted_ids"][:50]}
            ),
        },
    )
