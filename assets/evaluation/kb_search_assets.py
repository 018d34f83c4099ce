"""Knowledge-base search: the fusion of its stages chosen on validation, and the evaluation of the
served pipeline against BM25 on held-out queries."""

from dataclasses import asdict, replace

import dagster as dg
import pandas as pd

from assets.embeddings.two_tower import TwoTower, train_two_tower
from assets.embeddings.vectors import table_to_vectors
from assets.evaluation.faq import (
    evaluate_encoder,
    evaluate_kb_modes,
    holdout,
    kb_search_metrics,
    kb_stage_scores,
)
from assets.ingest.kb import doc_texts
from assets.retrieval.kb_fusion import KbFusionParams, choose_kb_fusion
from assets.retrieval.kb_search import HybridKbIndex
from resources.mlflow_tracking import MlflowResource


def _curve_table(curve: list[dict], top: int = 8) -> str:
    rows = sorted(curve, key=lambda r: -r["mrr@10"])[:top]
    rows += [r for r in curve if r["params"]["method"] == "vector" and r not in rows]
    lines = ["| fusion | val MRR@10 | gain | 1 SE | chosen |", "|---|---|---|---|---|"]
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
    """How ``hybrid`` KB search combines BM25 (or BM25 × PageRank) with vector recall, chosen on
    validation: a tenth of the distinct training queries is held out (removed from the pairs and
    from the entries' similar questions), an encoder with the served model's parameters is trained
    on the rest and early-stopped on them, and :func:`~assets.retrieval.kb_fusion.choose_kb_fusion`
    scores the fusion grid there. The vector ranking alone is kept unless a fusion beats it by more
    than one standard error; the test queries are never seen. The curve goes to the served model's
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
    lexical, cos, relevant, _ = kb_stage_scores(model.encode, val_docs, val_queries, p.tokenizer)
    chosen, curve = choose_kb_fusion(lexical, cos, relevant)
    best = next(r for r in curve if r["chosen"])
    run_id = two_tower_model.history.get("mlflow_run_id")
    if run_id:
        mlflow_tracking.log_dict(run_id, curve, "kb_fusion_curve.json")
        mlflow_tracking.log_metrics(
            run_id, {"kb_fusion_val_mrr@10": best["mrr@10"], "kb_vector_val_mrr@10": curve[0]["mrr@10"]}
        )
    return dg.Output(
        {"params": asdict(chosen), "label": chosen.label(), "curve": curve},
        metadata={
            "fusion": chosen.label(),
            "val_queries": len(val_queries),
            "val_mrr@10_chosen": round(best["mrr@10"], 4),
            "val_mrr@10_vector": round(curve[0]["mrr@10"], 4),
            "candidates_scored": len(curve),
            "validation_curve": dg.MetadataValue.md(_curve_table(curve)),
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
            **{f"{m}_{k}": round(v, 4) for m, d in res.items() if m != "modes" for k, v in d.items()},
            **{f"{m}_{k}": round(v, 4) for m, d in res["modes"].items() for k, v in d.items()},
        },
    )
