"""Knowledge-base search: the fusion of its stages chosen on validation, and the evaluation of the
served pipeline against BM25 on held-out queries."""

from dataclasses import asdict, replace

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
from assets.retrieval.kb_fusion import KbFusionParams
from assets.retrieval.kb_rerank import KbReranker
from assets.retrieval.kb_search import HybridKbIndex
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
) -> dg.Output[dict]:
    """How ``hybrid`` KB search combines BM25 (or BM25 × PageRank) with vector recall, and whether
    a learned second stage rescores the result, both chosen on validation: a tenth of the distinct
    training queries is held out (removed from the pairs and from the entries' similar questions),
    an encoder with the served model's parameters is trained on the rest and early-stopped on them,
    :func:`~assets.retrieval.kb_fusion.choose_kb_fusion` scores the fusion grid there and
    :func:`~assets.retrieval.kb_rerank.choose_kb_rerank` cross-validates the reranker over the same
    queries. Each is kept only when it beats the stage before by more than one standard error; the
    test queries are never seen. The curves, and the reranker's model, go to the served model's
    MLflow run."""
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
    stages = choose_kb_stages(model.encode, val_docs, val_queries, p.tokenizer)
    chosen, curve, reranker = stages["fusion"], stages["fusion_curve"], stages["reranker"]
    best = next(r for r in curve if r["chosen"])
    rerank_best = next(r for r in stages["rerank_curve"] if r["chosen"])
    rerank = reranker.to_dict() if reranker is not None else None
    run_id = two_tower_model.history.get("mlflow_run_id")
    if run_id:
        mlflow_tracking.log_dict(run_id, curve, "kb_fusion_curve.json")
        mlflow_tracking.log_dict(run_id, stages["rerank_curve"], "kb_rerank_curve.json")
        if rerank is not None:
            mlflow_tracking.log_dict(run_id, rerank, "kb_reranker.json")
        mlflow_tracking.log_metrics(
            run_id,
            {
                "kb_fusion_val_mrr@10": best["mrr@10"],
                "kb_vector_val_mrr@10": curve[0]["mrr@10"],
                "kb_rerank_val_mrr@10": rerank_best["mrr@10"],
            },
        )
    return dg.Output(
        {
            "params": asdict(chosen),
            "label": chosen.label(),
            "curve": curve,
            "rerank": rerank,
            "rerank_curve": stages["rerank_curve"],
        },
        metadata={
            "fusion": chosen.label(),
            "rerank": rerank_best["label"],
            "val_queries": len(val_queries),
            "val_mrr@10_chosen": round(best["mrr@10"], 4),
            "val_mrr@10_vector": round(curve[0]["mrr@10"], 4),
            "val_mrr@10_reranked": round(rerank_best["mrr@10"], 4),
            "candidates_scored": len(curve),
            "validation_curve": dg.MetadataValue.md(_curve_table(curve)),
            "rerank_validation_curve": dg.MetadataValue.md(
                _curve_table(stages["rerank_curve"], what="second stage (5-fold)")
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
    kb_documents: dict, two_tower_model: TwoTower, kb_doc_vectors, kb_search_fusion: dict
):
    """Held-out queries (never seen in training or validation): two-tower vs BM25 (same
    tokenisation), and every search mode, ``hybrid`` fused as ``kb_search_fusion`` chose."""
    docs, test = pd.DataFrame(kb_documents["docs"]), pd.DataFrame(kb_documents["test"])
    if test.empty:
        raise dg.Failure("kb_documents has no held-out test queries to evaluate on")
    ids, vecs, _ = table_to_vectors(kb_doc_vectors)
    res = kb_search_metrics(docs, test, two_tower_model.encode, ids, vecs, two_tower_model.params.tokenizer)
    index = HybridKbIndex.build(
        docs.assign(doc_id=ids) if len(ids) == len(docs) else docs, vecs, two_tower_model.params.tokenizer
    ).with_fusion(KbFusionParams.from_dict(kb_search_fusion["params"]))
    if kb_search_fusion.get("rerank"):
        index = index.with_reranker(KbReranker.from_dict(kb_search_fusion["rerank"]))
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
            "fusion": kb_search_fusion["label"],
            "reranked": index.reranker is not None,
            **{f"{m}_{k}": round(v, 4) for m, d in res.items() if m != "modes" for k, v in d.items()},
            **{f"{m}_{k}": round(v, 4) for m, d in res["modes"].items() for k, v in d.items()},
        },
    )
