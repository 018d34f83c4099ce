"""Knowledge-base search: the fusion of its stages chosen on validation, and the evaluation of the
served pipeline against BM25 on held-out queries."""

import tempfile
from dataclasses import replace

import dagster as dg
import pandas as pd

from assets.embeddings.two_tower import TwoTower, train_two_tower
from assets.embeddings.vectors import table_to_vectors
from assets.evaluation.faq import (
    choose_kb_stages,
    evaluate_encoder,
    evaluate_kb_modes,
    holdout,
    kb_search_metrics,
)
from assets.ingest.kb import doc_texts
from assets.retrieval.kb_search import HybridKbIndex
from assets.retrieval.kb_stages import KbStages
from resources.mlflow_tracking import MlflowResource


def _curve_table(curve: list[dict], top: int = 8, what: str = "fusion") -> str:
    rows = sorted(curve, key=lambda r: -r["mrr@10"])[:top]
    rows += [r for r in curve[:1] if r not in rows]  # the default, always shown
    lines = [f"| {what} | val MRR@10 | gain | 1 SE | chosen |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['label']} | {r['mrr@10']:.4f} | {r['gain']:+.4f} | {r['se']:.4f} | "
        f"{'✓' if r['chosen'] else ''} |"
        for r in rows
    ]
    return "\n".join(lines)


@dg.asset(kinds={"torch", "mlflow"})
def kb_search_fusion(
    kb_documents: dict, two_tower_model: TwoTower, mlflow_tracking: MlflowResource
) -> dg.Output[KbStages]:
    """How ``hybrid`` KB search combines BM25 (or BM25 × PageRank) with vector recall, and whether
    a second stage rescores the result, both chosen on validation: a tenth of the distinct
    training queries is held out (removed from the pairs and from the entries' similar questions),
    an encoder with the served model's parameters is trained on the rest and early-stopped on them,
    :func:`~assets.retrieval.kb_fusion.choose_kb_fusion` scores the fusion grid there; a second
    encoder is trained on hard negatives that fused first stage mines from the training pairs
    (:mod:`~assets.retrieval.kb_second_encoder`), and
    :func:`~assets.retrieval.kb_rerank.choose_kb_rerank` cross-validates the second stages (LambdaRank
    over the stages' features, with and without the second encoder's, and the second encoder
    alone) over the same queries. Each is kept only when it beats the stage before by more than
    one standard error; the test queries are never seen. The curves, the reranker's model and the
    second encoder go to the served model's MLflow run."""
    docs = pd.DataFrame(kb_documents["docs"])
    pairs, val_docs, val_queries = holdout({"train": pd.DataFrame(kb_documents["train"]), "train_docs": docs})
    p = two_tower_model.params
    model = train_two_tower(
        pairs["query"].tolist(),
        pairs["positive"].tolist(),
        pairs["doc_id"].tolist(),
        replace(p, val_fraction=0.0),
        corpus=doc_texts(val_docs),
        validate=lambda m: evaluate_encoder(m.encode, val_docs, val_queries)["mrr@10"],
    )
    chosen = choose_kb_stages(model.encode, val_docs, val_queries, p.tokenizer, first=model, pairs=pairs)
    stages = KbStages(
        chosen["fusion"], chosen["fusion_curve"], chosen["rerank_curve"], chosen["reranker"]
    ).with_docs(docs)
    best = next(r for r in stages.curve if r["chosen"])
    rerank_best = next(r for r in stages.rerank_curve if r["chosen"])
    run_id = two_tower_model.history.get("mlflow_run_id")
    if run_id:
        mlflow_tracking.log_dict(run_id, stages.curve, "kb_fusion_curve.json")
        mlflow_tracking.log_dict(run_id, stages.rerank_curve, "kb_rerank_curve.json")
        if stages.reranker is not None:
            mlflow_tracking.log_dict(run_id, stages.reranker.to_dict(), "kb_reranker.json")
        if chosen["second"] is not None:  # trained either way: its weights beside its curve rows
            with tempfile.TemporaryDirectory() as tmp:
                chosen["second"].save(tmp)
                mlflow_tracking.log_artifacts(run_id, tmp, "kb_second_encoder")
        mlflow_tracking.log_metrics(
            run_id,
            {
                "kb_fusion_val_mrr@10": best["mrr@10"],
                "kb_vector_val_mrr@10": stages.curve[0]["mrr@10"],
                "kb_rerank_val_mrr@10": rerank_best["mrr@10"],
            },
        )
    return dg.Output(
        stages,
        metadata={
            "fusion": stages.label,
            "rerank": stages.rerank_label,
            "val_queries": len(val_queries),
            "val_mrr@10_chosen": round(best["mrr@10"], 4),
            "val_mrr@10_vector": round(stages.curve[0]["mrr@10"], 4),
            "val_mrr@10_reranked": round(rerank_best["mrr@10"], 4),
            "candidates_scored": len(stages.curve),
            "validation_curve": dg.MetadataValue.md(_curve_table(stages.curve)),
            "rerank_validation_curve": dg.MetadataValue.md(
                _curve_table(stages.rerank_curve, what="second stage (5-fold)")
            ),
        },
    )


@dg.asset(
    kinds={"torch"},
    check_specs=[
        dg.AssetCheckSpec(
            "two_tower_not_worse_than_bm25",
            asset="kb_search_evaluation",
            description="two-tower MRR@10 on held-out queries is at least BM25's",
        )
    ],
)
def kb_search_evaluation(
    kb_documents: dict, two_tower_model: TwoTower, kb_doc_vectors, kb_search_fusion: KbStages
):
    """Held-out queries (never seen in training or validation): two-tower vs BM25 (same
    tokenisation), and every search mode, ``hybrid`` fused as ``kb_search_fusion`` chose."""
    docs, test = pd.DataFrame(kb_documents["docs"]), pd.DataFrame(kb_documents["test"])
    if test.empty:
        raise dg.Failure("kb_documents has no held-out test queries to evaluate on")
    ids, vecs, _ = table_to_vectors(kb_doc_vectors)
    res = kb_search_metrics(docs, test, two_tower_model.encode, ids, vecs, two_tower_model.params.tokenizer)
    index = kb_search_fusion.apply(
        HybridKbIndex.build(
            docs.assign(doc_id=ids) if len(ids) == len(docs) else docs, vecs, two_tower_model.params.tokenizer
        )
    )
    res["modes"] = evaluate_kb_modes(index, test, two_tower_model.encode(test["query"].tolist()))
    a, b = res["two_tower"]["mrr@10"], res["bm25"]["mrr@10"]
    yield dg.AssetCheckResult(
        check_name="two_tower_not_worse_than_bm25",
        passed=a >= b,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"two_tower_mrr@10": a, "bm25_mrr@10": b},
    )
    yield dg.Output(
        res,
        metadata={
            "fusion": kb_search_fusion.label,
            "rerank": kb_search_fusion.rerank_label,
            "reranked": index.reranker is not None,
            **{f"{m}_{k}": round(v, 4) for m, d in res.items() if m != "modes" for k, v in d.items()},
            **{f"{m}_{k}": round(v, 4) for m, d in res["modes"].items() for k, v in d.items()},
        },
    )
