"""Knowledge-base assets: documents → two-tower encoder (MLflow pyfunc) → document vectors, vs BM25."""

import tempfile
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd

from assets.embeddings.assets import vectors_check
from assets.embeddings.two_tower import TwoTower, TwoTowerParams, train_two_tower
from assets.embeddings.vectors import VectorMeta, vector_profile, vectors_to_table
from assets.evaluation.faq import bm25_rank, doc_texts, kb_doc_vectors as doc_vectors, retrieval_metrics, vector_rank
from assets.ingest.assets import gate
from assets.ingest.kb import generate_kb
from resources.mlflow_tracking import MlflowResource
from resources.validation import GreatExpectationsResource

TWO_TOWER_MODEL_NAME = "recstack-two-tower"
PYFUNC_CODE = str(Path(__file__).with_name("two_tower_pyfunc.py"))


class KbConfig(dg.Config):
    n_docs: int = 48
    questions_per_doc: int = 8
    seed: int = 3


@dg.asset(group_name="ingest", kinds={"pandas"})
def kb_documents(config: KbConfig) -> dg.Output[dict]:
    """FAQ documents (title + similar questions), training query pairs and held-out queries."""
    kb = generate_kb(config.n_docs, config.questions_per_doc, config.seed)
    out = {k: v.to_dict("records") for k, v in kb.items()}
    return dg.Output(out, metadata={"documents": len(kb["docs"]), "train_pairs": len(kb["train"]), "test_queries": len(kb["test"])})


class TwoTowerConfig(dg.Config):
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
    tokenizer: str = "char"
    token_dropout: float = 0.1
    symmetric: bool = True
    resample_positives: bool = True


@dg.asset(group_name="embeddings", kinds={"torch", "mlflow"})
def two_tower_model(context: dg.AssetExecutionContext, config: TwoTowerConfig, kb_documents: dict,
                    mlflow_tracking: MlflowResource) -> dg.Output[TwoTower]:
    """Shared-tower transformer encoder trained with InfoNCE on in-batch negatives; logged as a pyfunc
    (``predict(list[str]) -> vectors``) and registered as ``challenger``."""
    train, docs = pd.DataFrame(kb_documents["train"]), pd.DataFrame(kb_documents["docs"])
    p = TwoTowerParams(**config.model_dump())  # every config field is a TwoTowerParams field
    model = train_two_tower(train["query"].tolist(), train["positive"].tolist(), train["doc_id"].tolist(), p, corpus=doc_texts(docs))
    h = model.history
    with mlflow_tracking.start_run("two_tower_model", tags={"dagster_run_id": context.run_id, "dagster_asset": "two_tower_model"}) as run:
        mlflow.log_params({**p.__dict__, "vocab": len(model.vocab)})
        for i, (loss, vm) in enumerate(zip(h["loss"], h["val_mrr"])):
            mlflow.log_metrics({"train_loss": loss, "val_mrr_at_10": vm}, step=i)
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / "encoder")
            info = mlflow.pyfunc.log_model(name="model", python_model=PYFUNC_CODE, artifacts={"encoder": str(Path(tmp) / "encoder")},
                                           pip_requirements=["mlflow==3.17.2", "torch==2.13.0", "numpy==2.4.6", "pandas==2.3.3"],
                                           registered_model_name=TWO_TOWER_MODEL_NAME)
    version = str(info.registered_model_version)
    mlflow_tracking.set_alias(TWO_TOWER_MODEL_NAME, "challenger", version)
    model.history.update(mlflow_run_id=run.info.run_id, model_version=version)
    return dg.Output(model, metadata={"mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(run.info.run_id)),
                                      "model_version": version, "epochs": h["epochs"], "best_val_mrr@10": round(h["best_val_mrr"], 4),
                                      "train_seconds": h["train_seconds"], "device": h["device"], "vocab": len(model.vocab)})


@dg.asset(group_name="embeddings", kinds={"arrow"}, check_specs=vectors_check("kb_doc_vectors"))
def kb_doc_vectors(kb_documents: dict, two_tower_model: TwoTower, gx: GreatExpectationsResource):
    """A document's vector: the mean of its title's and all its similar questions' vectors, re-normalised."""
    docs = pd.DataFrame(kb_documents["docs"])
    vecs = doc_vectors(two_tower_model.encode, docs)
    table = vectors_to_table(docs["doc_id"].to_numpy(np.int64), vecs,
                             VectorMeta(model_name=TWO_TOWER_MODEL_NAME, model_version=str(two_tower_model.history.get("model_version", "")),
                                        extra={"entity": "kb_document"}))
    yield from gate(gx.validate(vector_profile(table), "vectors"), "kb_doc_vectors_suite")
    yield dg.Output(table, metadata={"rows": table.num_rows, "dim": int(vecs.shape[1])})


@dg.asset(group_name="evaluation", kinds={"torch"},
          check_specs=[dg.AssetCheckSpec("two_tower_not_worse_than_bm25", asset="kb_search_evaluation",
                                         description="two-tower MRR@10 on held-out queries is at least BM25's")])
def kb_search_evaluation(kb_documents: dict, two_tower_model: TwoTower, kb_doc_vectors):
    """Held-out queries (templates never seen in training): two-tower vs BM25 (same tokenisation)."""
    from assets.embeddings.vectors import table_to_vectors

    docs, test = pd.DataFrame(kb_documents["docs"]), pd.DataFrame(kb_documents["test"])
    ids, vecs, _ = table_to_vectors(kb_doc_vectors)
    rel = test["doc_id"].to_numpy()
    res = {"two_tower": retrieval_metrics(vector_rank(vecs, two_tower_model.encode(test["query"].tolist()), ids), rel),
           "bm25": retrieval_metrics(bm25_rank(docs, test["query"].tolist(), two_tower_model.params.tokenizer), rel)}
    a, b = res["two_tower"]["mrr@10"], res["bm25"]["mrr@10"]
    yield dg.AssetCheckResult(check_name="two_tower_not_worse_than_bm25", passed=a >= b, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"two_tower_mrr@10": a, "bm25_mrr@10": b})
    yield dg.Output(res, metadata={f"{m}_{k}": round(v, 4) for m, d in res.items() for k, v in d.items()})
