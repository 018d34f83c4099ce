"""Knowledge-base search evaluation: the two-tower encoder against BM25 on held-out queries."""

import dagster as dg
import pandas as pd

from assets.embeddings.two_tower import TwoTower
from assets.embeddings.vectors import table_to_vectors
from assets.evaluation.faq import evaluate_kb_modes, kb_search_metrics
from assets.retrieval.kb_search import HybridKbIndex


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
def kb_search_evaluation(kb_documents: dict, two_tower_model: TwoTower, kb_doc_vectors):
    """Held-out queries (templates never seen in training): two-tower vs BM25 (same tokenisation)."""
    docs, test = pd.DataFrame(kb_documents["docs"]), pd.DataFrame(kb_documents["test"])
    if test.empty:
        raise dg.Failure("kb_documents has no held-out test queries to evaluate on")
    ids, vecs, _ = table_to_vectors(kb_doc_vectors)
    res = kb_search_metrics(docs, test, two_tower_model.encode, ids, vecs, two_tower_model.params.tokenizer)
    index = HybridKbIndex.build(
        docs.assign(doc_id=ids) if len(ids) == len(docs) else docs, vecs, two_tower_model.params.tokenizer
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
            **{f"{m}_{k}": round(v, 4) for m, d in res.items() if m != "modes" for k, v in d.items()},
            **{f"{m}_{k}": round(v, 4) for m, d in res["modes"].items() for k, v in d.items()},
        },
    )
