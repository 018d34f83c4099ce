"""Knowledge-base embeddings: the two-tower text encoder (MLflow pyfunc) and the documents' vectors."""

from dataclasses import replace
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from assets.common.tuned import adopted_fields, params_source
from assets.embeddings.assets import vectors_check
from assets.embeddings.text import Tokenizer, document_vectors
from assets.embeddings.two_tower import TwoTower, TwoTowerParams, train_two_tower
from assets.embeddings.vectors import VectorMeta, vector_profile, vectors_to_table
from assets.ingest.kb import doc_texts
from resources.kubernetes import gpu_op_tags
from resources.mlflow_tracking import MlflowResource, dagster_tags
from resources.validation import GreatExpectationsResource, gate

TWO_TOWER_MODEL_NAME = "recstack-two-tower"
TWO_TOWER_PYFUNC = str(Path(__file__).with_name("two_tower_pyfunc.py"))


class TwoTowerConfig(dg.Config):
    """Encoder and training parameters (see :class:`TwoTowerParams`)."""

    use_tuned: bool = True  # tau, lr, max_epochs from two_tower_tuning; False: the values below
    dim: int = 64
    out_dim: int = 64
    heads: int = 4
    layers: int = 2
    tau: float = 0.05
    lr: float = 2e-3
    batch_size: int = 32
    max_epochs: int = 15
    patience: int = 3
    seed: int = 0
    tokenizer: Tokenizer = "char"
    token_dropout: float = 0.1
    symmetric: bool = True
    resample_positives: bool = True

    def params(self, tuned: dict | None = None) -> TwoTowerParams:
        """These fields, with the searched ones from ``tuned`` (``two_tower_tuning``'s output) when ``use_tuned``."""
        p = TwoTowerParams(**self.model_dump(exclude={"use_tuned"}))  # every other field is a TwoTowerParams field
        return replace(p, **adopted_fields(tuned)) if self.use_tuned else p


@dg.asset(kinds={"torch", "mlflow"}, op_tags=gpu_op_tags())
def two_tower_model(context: dg.AssetExecutionContext, config: TwoTowerConfig, kb_documents: dict, two_tower_tuning: dict,
                    mlflow_tracking: MlflowResource) -> dg.Output[TwoTower]:
    """Shared-tower transformer encoder trained with InfoNCE on in-batch negatives, with
    ``two_tower_tuning``'s best tau, lr and epoch budget; logged as a pyfunc (``predict(list[str])
    -> vectors``) and registered as ``challenger``."""
    train, docs = pd.DataFrame(kb_documents["train"]), pd.DataFrame(kb_documents["docs"])
    p = config.params(two_tower_tuning)
    model = train_two_tower(train["query"].tolist(), train["positive"].tolist(), train["doc_id"].tolist(), p, corpus=doc_texts(docs))
    h = model.history
    reg = mlflow_tracking.log_and_register(
        TWO_TOWER_MODEL_NAME, TWO_TOWER_PYFUNC, {"encoder": model.save}, run_name="two_tower_model", tags=dagster_tags(context),
        params={**p.__dict__, "vocab": len(model.vocab)},
        metrics={"best_val_mrr_at_10": h["best_val_mrr"], "train_seconds": h["train_seconds"]},
        step_metrics={"train_loss": h["loss"], "val_mrr_at_10": h["val_mrr"]},
        requirements=("torch", *(("jieba",) if p.tokenizer == "jieba" else ())))
    model.history.update(mlflow_run_id=reg.run_id, model_version=reg.version)
    return dg.Output(model, metadata={"mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(reg.run_id)),
                                      "model_version": reg.version, "epochs": h["epochs"], "best_val_mrr@10": round(h["best_val_mrr"], 4),
                                      "train_seconds": h["train_seconds"], "device": h["device"], "vocab": len(model.vocab),
                                      "tau": p.tau, "lr": p.lr, "max_epochs": p.max_epochs,
                                      "params_from": params_source("two_tower_tuning", config.use_tuned, two_tower_tuning)})


@dg.asset(kinds={"arrow"}, check_specs=vectors_check("kb_doc_vectors"))
def kb_doc_vectors(kb_documents: dict, two_tower_model: TwoTower, gx: GreatExpectationsResource):
    """A document's vector: the mean of its title's and all its similar questions' vectors, re-normalised."""
    docs = pd.DataFrame(kb_documents["docs"])
    vecs = document_vectors(two_tower_model.encode, docs)
    table = vectors_to_table(docs["doc_id"].to_numpy(np.int64), vecs,
                             VectorMeta(model_name=TWO_TOWER_MODEL_NAME, model_version=str(two_tower_model.history.get("model_version", "")),
                                        extra={"entity": "kb_document", "tokenizer": two_tower_model.params.tokenizer}))
    yield from gate(gx.validate(vector_profile(table), "vectors"), "kb_doc_vectors_suite")
    yield dg.Output(table, metadata={"rows": table.num_rows, "dim": int(vecs.shape[1])})
