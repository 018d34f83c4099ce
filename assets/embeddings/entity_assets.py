"""Entity text vectors (similar entities): a fitted encoder, registered as a pyfunc, and its vectors."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from assets.common._shared import TunedParamsConfig, params_config
from assets.embeddings._shared import monitor_vectors, vectors_check
from assets.embeddings.entity_vectors import EntityEncoder, EntityVectorParams, same_label_precision
from assets.embeddings.vectors import VectorMeta, vector_profile, vectors_to_table
from recstack import names
from resources.mlflow_tracking import MlflowResource, dagster_tags
from resources.monitoring import MonitoringResource
from resources.validation import GreatExpectationsResource, gate

ENTITY_PYFUNC = str(Path(__file__).with_name("entity_pyfunc.py"))


EntityVectorConfig = params_config(
    EntityVectorParams,
    "EntityVectorConfig",
    "Entity text-vector parameters (:class:`~assets.embeddings.entity_vectors.EntityVectorParams`).",
    base=TunedParamsConfig,
)


def industry_precision(profiles: pd.DataFrame, vecs: np.ndarray, p: EntityVectorParams) -> dict[str, float]:
    """Same-industry precision@10 of the vectors and of the structured fields alone (when the
    profiles carry ``industry``, as the synthetic ones do)."""
    if "industry" not in profiles.columns:
        return {}
    lab = profiles["industry"].to_numpy()
    fields_only = EntityEncoder.fit(
        profiles, EntityVectorParams(**{**p.__dict__, "text_weight": 0.0})
    ).encode(profiles)[0]
    return {
        "same_industry_precision_at_10": same_label_precision(vecs, lab),
        "fields_only_precision_at_10": same_label_precision(fields_only, lab),
    }


@dg.asset(kinds={"gensim", "mlflow"}, check_specs=vectors_check("entity_vectors"))
def entity_vectors(
    context: dg.AssetExecutionContext,
    config: EntityVectorConfig,
    entity_profiles: pd.DataFrame,
    mlflow_tracking: MlflowResource,
    gx: GreatExpectationsResource,
    monitoring: MonitoringResource,
):
    """Description word vectors (jieba + gensim, or a pretrained file) ⊕ weighted one-hot fields,
    unit-normalised. The fitted encoder is registered as ``recstack-entity-vectors@challenger``
    (``predict(profiles) -> vectors``), so new entities and free text map into the same space."""
    p = config.params()
    encoder = EntityEncoder.fit(entity_profiles, p)
    vecs, known = encoder.encode(entity_profiles)
    ids = entity_profiles["entity_id"].to_numpy(np.int64)
    meta = VectorMeta(model_name=names.ENTITY_MODEL, extra={"entity": "entity"})
    yield from gate(
        gx.validate(vector_profile(vectors_to_table(ids, vecs, meta)), "vectors"), "entity_vectors_suite"
    )
    drift_meta = yield from monitor_vectors(context, monitoring, "entity_vectors", ids, vecs)
    metrics = industry_precision(entity_profiles, vecs, p)
    reg = mlflow_tracking.log_and_register(
        names.ENTITY_MODEL,
        ENTITY_PYFUNC,
        {"encoder": encoder.save},
        run_name="entity_vectors",
        tags=dagster_tags(context),
        params={
            **{k: v for k, v in p.__dict__.items() if k != "field_weights"},
            "vocab": len(encoder.words.words),
            "dim": encoder.dim,
            "entities": len(ids),
        },
        metrics=metrics,
        dicts={"field_weights.json": p.field_weights},
        requirements=("jieba",) if p.tokenizer == "jieba" else (),
    )
    meta.model_version = reg.version
    table = vectors_to_table(ids, vecs, meta)
    yield dg.Output(
        table,
        metadata={
            "rows": table.num_rows,
            "dim": encoder.dim,
            "vocab": len(encoder.words.words),
            "no_known_word": int((~known).sum()),
            "model_version": reg.version,
            **{k: round(v, 4) for k, v in metrics.items()},
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(reg.run_id)),
            **drift_meta,
        },
    )
