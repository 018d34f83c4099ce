"""Knowledge-base search evaluation: the two-tower encoder against BM25 on held-out queries."""

import dagster as dg
import numpy as np
import pandas as pd

from assets.embeddings.two_tower import TwoTower
from assets.embeddings.vectors import table_to_vectors
from assets.evaluation.faq import bm25_rank, retrieval_metrics, vector_rank
from assets.retrieval.kb_search import MODES, HybridKbIndex


def kb_search_metrics(docs: pd.DataFrame, test: pd.DataFrame, encode, doc_ids, doc_vecs, tokenizer: str) -> dict:
    """recall@1/5 and MRR@10 of vector search (``encode`` + document vectors) and of BM25."""
    rel = test["doc_id"].to_numpy()
    queries = test["query"].tolist()
    return {"two_tower": retrieval_metrics(vector_rank(doc_vecs, encode(queries), doc_ids), rel),
            "bm25": retrieval_metrics(bm25_rank(docs, queries, tokenizer), rel)}


def evaluate_kb_modes(index: HybridKbIndex, test: pd.DataFrame, query_vecs: np.ndarray, n_candidates: int = 50,
                      lexical_weight: float = 0.0) -> dict[str, dict[str, float]]:
    """recall@1/@5 and MRR@10 of BM25, BM25×PageRank, vector and hybrid search on ``test`` queries."""
    rel = test["doc_id"].to_numpy()
    queries = test["query"].tolist()
    return {mode: retrieval_metrics(index.search(queries, query_vecs, k=10, mode=mode, n_candidates=n_candidates,
                                                 lexical_weight=lexical_weight)[0], rel) for mode in MODES}


@dg.asset(kinds={"torch"},
          check_specs=[dg.AssetCheckSpec("two_tower_not_worse_than_bm25", asset="kb_search_evaluation",
                                         description="two-tower MRR@10 on held-out queries is at least BM25's")])
def kb_search_evaluation(kb_documents: dict, two_tower_model: TwoTower, kb_doc_vectors):
    """Held-out queries (templates never seen in training): two-tower vs BM25 (same tokenisation)."""
    docs, test = pd.DataFrame(kb_documents["docs"]), pd.DataFrame(kb_documents["test"])
    if test.empty:
        raise dg.Failure("kb_documents has no held-out test queries to evaluate on")
    ids, vecs, _ = table_to_vectors(kb_doc_vectors)
    res = kb_search_metrics(docs, test, two_tower_model.encode, ids, vecs, two_tower_model.params.tokenizer)
    index = HybridKbIndex.build(docs.assign(doc_id=ids) if len(ids) == len(docs) else docs, vecs, two_tower_model.params.tokenizer)
    res["modes"] = evaluate_kb_modes(index, test, two_tower_model.encode(test["query"].tolist()))
    a, b = res["two_tower"]["mrr@10"], res["bm25"]["mrr@10"]
    yield dg.AssetCheckResult(check_name="two_tower_not_worse_than_bm25", passed=a >= b, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"two_tower_mrr@10": a, "bm25_mrr@10": b})
    yield dg.Output(res, metadata={**{f"{m}_{k}": round(v, 4) for m, d in res.items() if m != "modes" for k, v in d.items()},
                                   **{f"{m}_{k}": round(v, 4) for m, d in res["modes"].items() for k, v in d.items()}})
