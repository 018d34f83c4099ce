"""Entity profile and entity text-vector assets (similar entities)."""

import json
import tempfile
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd

from assets.embeddings.assets import vectors_check
from assets.embeddings.entity_vectors import EntityVectorParams, entity_vectors as build_entity_vectors, same_label_precision
from assets.embeddings.vectors import VectorMeta, vector_profile, vectors_to_table
from assets.ingest.assets import gate
from assets.ingest.entities import generate_profiles
from resources.mlflow_tracking import MlflowResource
from resources.validation import GreatExpectationsResource


class EntityProfilesConfig(dg.Config):
    source: str = "synthetic"  # synthetic | file (Parquet or JSON lines with the same columns)
    path: str = ""
    n_entities: int = 2000
    seed: int = 5


@dg.asset(group_name="ingest", kinds={"pandas"})
def entity_profiles(config: EntityProfilesConfig) -> dg.Output[pd.DataFrame]:
    """Companies: ``entity_id``, ``name``, ``description``, ``location``, ``type``, ``tags`` (and ``industry``
    where known, for evaluation)."""
    if config.source == "synthetic":
        df = generate_profiles(config.n_entities, config.seed)
    elif config.source == "file":
        df = pd.read_parquet(config.path) if config.path.endswith(".parquet") else pd.read_json(config.path, lines=True)
    else:
        raise dg.Failure(f"unknown entity_profiles source {config.source!r} (synthetic, file)")
    return dg.Output(df, metadata={"rows": len(df), "preview": dg.MetadataValue.md(df.head(3).drop(columns="tags").to_markdown(index=False))})


class EntityVectorConfig(dg.Config):
    tokenizer: str = "jieba"
    dim: int = 64
    epochs: int = 30
    pretrained_path: str = ""
    text_weight: float = 1.0
    location_weight: float = 0.3
    type_weight: float = 0.2
    tags_weight: float = 0.3


@dg.asset(group_name="embeddings", kinds={"gensim", "mlflow"}, check_specs=vectors_check("entity_vectors"))
def entity_vectors(context: dg.AssetExecutionContext, config: EntityVectorConfig, entity_profiles: pd.DataFrame,
                   mlflow_tracking: MlflowResource, gx: GreatExpectationsResource):
    """Description word vectors (jieba + gensim, or a pretrained file) ⊕ weighted one-hot fields,
    unit-normalised; same-industry precision@10 is measured when the profiles carry ``industry``."""
    p = EntityVectorParams(tokenizer=config.tokenizer, dim=config.dim, epochs=config.epochs, pretrained_path=config.pretrained_path,
                           text_weight=config.text_weight,
                           field_weights={"location": config.location_weight, "type": config.type_weight, "tags": config.tags_weight})
    vecs, stats = build_entity_vectors(entity_profiles, p)
    metrics = {}
    if "industry" in entity_profiles.columns:
        lab = entity_profiles["industry"].to_numpy()
        metrics["same_industry_precision_at_10"] = same_label_precision(vecs, lab)
        fields_only, _ = build_entity_vectors(entity_profiles, EntityVectorParams(**{**p.__dict__, "text_weight": 0.0}))
        metrics["fields_only_precision_at_10"] = same_label_precision(fields_only, lab)
    with mlflow_tracking.start_run("entity_vectors", tags={"dagster_run_id": context.run_id, "dagster_asset": "entity_vectors"}) as run:
        mlflow.log_params({k: v for k, v in stats.items() if k != "field_weights"})
        mlflow.log_dict(stats["field_weights"], "field_weights.json")
        if metrics:
            mlflow.log_metrics(metrics)
    table = vectors_to_table(entity_profiles["entity_id"].to_numpy(np.int64), vecs,
                             VectorMeta(model_name="entity_vectors", model_version=run.info.run_id, extra={"entity": "entity"}))
    yield from gate(gx.validate(vector_profile(table), "vectors"), "entity_vectors_suite")
    yield dg.Output(table, metadata={"rows": table.num_rows, "dim": stats["dim"], "vocab": stats["vocab"],
                                     "no_known_word": stats["no_known_word"], **{k: round(v, 4) for k, v in metrics.items()},
                                     "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(run.info.run_id))})
