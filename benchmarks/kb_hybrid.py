"""Hybrid knowledge-base search on BANKING77 and AFQMC: every stage against the hybrid, one run.

For each set: BM25, BM25 × PageRank (PR from the similar-question graph: each entry links to its 5
nearest entries by two-tower document vector), vector recall with a two-tower trained from scratch
(settings of ``benchmarks/faq_retrieval.py``, seed 0), and the hybrid: the stages fused as
:func:`~assets.retrieval.kb_fusion.choose_kb_fusion` chooses on the validation queries
:func:`~assets.evaluation.faq.holdout` carves from the training queries (vector alone unless a
fusion beats it there by more than one standard error). Reported: recall@5 and MRR@10 on the test
queries, the chosen fusion and its validation curve.

    python -m benchmarks.kb_hybrid [--sets banking77 afqmc] [--max-epochs N]   # results/kb_hybrid.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from benchmarks.common import RESULTS, write_result
from benchmarks.faq_retrieval import PARAMS, SHARED, train_on_holdout


def bench_set(name: str, max_epochs: int | None = None) -> dict:
    from assets.embeddings.text import document_vectors
    from assets.embeddings.two_tower import TwoTowerParams
    from assets.evaluation.faq import evaluate_kb_modes, holdout, kb_stage_scores, load_afqmc, load_banking77
    from assets.retrieval.kb_fusion import choose_kb_fusion
    from assets.retrieval.kb_search import HybridKbIndex

    data = (load_banking77 if name == "banking77" else load_afqmc)(SHARED / name)
    docs, test, tok = data["docs"], data["test"], data["tokenizer"]
    train, val_docs, val_queries = holdout(data)
    kw = dict(PARAMS[name], tokenizer=tok, val_fraction=0.0, seed=0)
    if max_epochs:
        kw["max_epochs"] = max_epochs
    t0 = time.perf_counter()
    model = train_on_holdout(train, val_docs, val_queries, TwoTowerParams(**kw))
    train_s = time.perf_counter() - t0
    vecs = document_vectors(model.encode, docs)
    index = HybridKbIndex.build(docs, vecs, tok)
    qv = model.encode(test["query"].tolist())
    chosen, curve = choose_kb_fusion(*kb_stage_scores(model.encode, val_docs, val_queries, tok)[:3])
    res = evaluate_kb_modes(index, test, qv, fusion=chosen)
    best_single = max(("bm25", "bm25_pr", "vector"), key=lambda m: res[m]["mrr@10"])
    out = {
        "docs": len(docs),
        "test_queries": len(test),
        "train_seconds": round(train_s, 1),
        "epochs": model.history["epochs"],
        "metrics": res,
        "best_single_stage": best_single,
        "fusion": chosen.label(),
        "validation_curve": curve,
        "hybrid_above_best_single": res["hybrid"]["mrr@10"] > res[best_single]["mrr@10"],
        "pagerank": {"min": float(index.pr.min()), "max": float(index.pr.max())},
    }
    print(
        f"  {name}: "
        + ", ".join(f"{m} MRR@10 {v['mrr@10']:.4f} R@5 {v['recall@5']:.3f}" for m, v in res.items()),
        flush=True,
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="+", default=["banking77", "afqmc"])
    ap.add_argument("--max-epochs", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    prev = RESULTS / "kb_hybrid.json"
    res = json.loads(prev.read_text())["results"] if prev.exists() else {}
    for name in args.sets:
        if not (SHARED / name).exists():
            print(f"  {name} skipped: {SHARED / name} not found")
            continue
        res[name] = bench_set(name, args.max_epochs)
    path = write_result("kb_hybrid", {"results": res})
    print(f"written {path}")
    return res


if __name__ == "__main__":
    main()
