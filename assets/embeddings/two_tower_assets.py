"""Two-tower assets: the knowledge-base text encoder (an MLflow pyfunc) and the documents' vectors."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from assets.common._shared import TunedParamsConfig, params_config
from assets.common.tuned import params_source
from assets.embeddings._shared import monitor_vectors, vectors_check
from assets.embeddings.text import document_vectors
from assets.embeddings.two_tower import TwoTower, TwoTowerParams, train_two_tower
from assets.embeddings.vectors import VectorMeta, vector_profile, vectors_to_table
from assets.ingest.kb import doc_texts
from recstack import names
from resources.kubernetes import gpu_op_tags
from resources.mlflow_tracking import MlflowResource, dagster_tags
from resources.monitoring import MonitoringResource
from resources.validation import GreatExpectationsResource, gate

TWO_TOWER_PYFUNC = str(Path(__file__).with_name("two_tower_pyfunc.py"))


TwoTowerConfig = params_config(
    TwoTowerParams,
    "TwoTowerConfig",
    "Encoder and training parameters (:class:`~assets.embeddings.two_tower.TwoTowerParams`).",
    base=TunedParamsConfig,
    extra={"use_tuned": (bool, True, "tau, lr, max_epochs from two_tower_tuning when it adopted them")},
)


@dg.asset(kinds={"torch", "mlflow"}, op_tags=gpu_op_tags())
def two_tower_model(
    context: dg.AssetExecutionContext,
    config: TwoTowerConfig,
    kb_documents: dict,
    two_tower_tuning: dict,
    mlflow_tracking: MlflowResource,
) -> dg.Output[TwoTower]:
    """Shared-tower transformer encoder trained with InfoNCE on in-batch negatives, with
    ``two_tower_tuning``'s best tau, lr and epoch budget; logged as a pyfunc (``predict(list[str])
    -> vectors``) and registered as ``challenger``."""
    train, docs = pd.DataFrame(kb_documents["train"]), pd.DataFrame(kb_documents["docs"])
    p = config.params(two_tower_tuning)
    model = train_two_tower(
        train["query"].tolist(),
        train["positive"].tolist(),
        train["doc_id"].tolist(),
        p,
        corpus=doc_texts(docs),
    )
    h = model.history
    reg = mlflow_tracking.log_and_register(
        names.TWO_TOWER_MODEL,
        TWO_TOWER_PYFUNC,
        {"encoder": model.save},
        run_name="two_tower_model",
        tags=dagster_tags(context),
        params={**p.__dict__, "vocab": len(model.vocab)},
        metrics={"best_val_mrr_at_10": h["best_val_mrr"], "train_seconds": h["train_seconds"]},
        step_metrics={"train_loss": h["loss"], "val_mrr_at_10": h["val_mrr"]},
        requirements=(
            "torch",
            *(("transformers", "tokenizers", "safetensors") if p.init == "pretrained" else ()),
            *(("jieba",) if p.tokenizer == "jieba" and p.init == "scratch" else ()),
        ),
    )
    model.history.update(mlflow_run_id=reg.run_id, model_version=reg.version)
    return dg.Output(
        model,
        metadata={
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(reg.run_id)),
            "model_version": reg.version,
            "epochs": h["epochs"],
            "best_val_mrr@10": round(h["best_val_mrr"], 4),
            "train_seconds": h["train_seconds"],
            "device": h["device"],
            "vocab": len(model.vocab),
            "init": p.init if p.init == "scratch" else f"pretrained ({p.pretrained})",
            "tau": p.tau,
            "lr": p.lr,
            "max_epochs": p.max_epochs,
            "params_from": params_source("two_tower_tuning", config.use_tuned, two_tower_tuning),
        },
    )


@dg.asset(kinds={"arrow"}, check_specs=vectors_check("kb_doc_vectors"))
def kb_doc_vectors(
    context: dg.AssetExecutionContext,
    kb_documents: dict,
    two_tower_model: TwoTower,
    gx: GreatExpectationsResource,
    monitoring: MonitoringResource,
):
    """A document's vector: the mean of its title's and all its similar questions' vectors, re-normalised."""
    docs = pd.DataFrame(kb_documents["docs"])
    vecs = document_vectors(two_tower_model.encode, docs)
    table = vectors_to_table(
        docs["doc_id"].to_numpy(np.int64),
        vecs,
        VectorMeta(
            model_name=names.TWO_TOWER_MODEL,
            model_version=str(two_tower_model.history.get("model_version", "")),
            extra={"entity": "kb_document", "tokenizer": two_tower_model.params.tokenizer},
        ),
    )
    yield from gate(gx.validate(vector_profile(table), "vectors"), "kb_doc_vectors_suite")
    drift_meta = yield from monitor_vectors(
        context, monitoring, "kb_doc_vectors", docs["doc_id"].to_numpy(np.int64), vecs
    )
    yield dg.Output(table, metadata={"rows": table.num_rows, "dim": int(vecs.shape[1]), **drift_meta})
