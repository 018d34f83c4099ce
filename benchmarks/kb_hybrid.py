"""Hybrid knowledge-base search on AFQMC (and BANKING77 on request): every stage against the hybrid.

BANKING77's stages, from scratch and from the pretrained start, are ``benchmarks.kb_pretrained``'s.
For each set and seed: BM25, BM25 × PageRank (PR from the similar-question graph: each entry links to its 5
nearest entries by two-tower document vector), vector recall with a two-tower trained from scratch
(settings of ``benchmarks/faq_retrieval.py``), and the hybrid: the stages fused as
:func:`~assets.retrieval.kb_fusion.choose_kb_fusion` chooses on the validation queries
:func:`~assets.evaluation.faq.holdout` carves from the training queries (vector alone unless a
fusion beats it there by more than one standard error), then the second stage
(:func:`~assets.retrieval.kb_rerank.choose_kb_rerank`, cross-validated on the same validation
queries; kept only when it beats the fused ranking there): LambdaRank, a second encoder trained
on hard negatives the fused first stage mines from the training pairs
(:mod:`~assets.retrieval.kb_second_encoder`), or both. Each second-encoder stage's test MRR@10
is reported too, kept or not. Reported: recall@5 and MRR@10 on the
test queries (``hybrid``: both stages; ``hybrid_first_stage``: the fusion alone), the chosen fusion
and reranker and their validation curves, and the reranker's cost per query.

    python -m benchmarks.kb_hybrid [--sets afqmc banking77] [--seeds 2] [--max-epochs N]
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from benchmarks.common import RESULTS, write_result
from benchmarks.faq_retrieval import PARAMS, SHARED, train_on_holdout


def bench_set(name: str, max_epochs: int | None = None, seed: int = 0) -> dict:
    """One encoder training (``seed``) on ``name``, every stage scored on its test queries."""
    from assets.embeddings.text import document_vectors
    from assets.embeddings.two_tower import TwoTowerParams
    from assets.evaluation.faq import choose_kb_stages, evaluate_kb_modes, holdout, load_afqmc, load_banking77
    from assets.retrieval.kb_search import HybridKbIndex
    from assets.retrieval.kb_stages import KbStages

    data = (load_banking77 if name == "banking77" else load_afqmc)(SHARED / name)
    docs, test, tok = data["docs"], data["test"], data["tokenizer"]
    train, val_docs, val_queries = holdout(data)
    kw = dict(PARAMS[name], tokenizer=tok, val_fraction=0.0, seed=seed)
    if max_epochs:
        kw["max_epochs"] = max_epochs
    t0 = time.perf_counter()
    model = train_on_holdout(train, val_docs, val_queries, TwoTowerParams(**kw))
    train_s = time.perf_counter() - t0
    vecs = document_vectors(model.encode, docs)
    t0 = time.perf_counter()
    stages = choose_kb_stages(model.encode, val_docs, val_queries, tok, first=model, pairs=train)
    stages_s = time.perf_counter() - t0
    chosen = stages["fusion"]
    kept = KbStages(chosen, stages["fusion_curve"], stages["rerank_curve"], stages["reranker"]).with_docs(
        docs
    )
    reranker = kept.reranker
    index = kept.apply(HybridKbIndex.build(docs, vecs, tok))
    qv = model.encode(test["query"].tolist())
    res = evaluate_kb_modes(index, test, qv)
    best_single = max(("bm25", "bm25_pr", "vector"), key=lambda m: res[m]["mrr@10"])
    rerank_ms = None
    if reranker is not None:
        t0 = time.perf_counter()
        for i in range(min(200, len(test))):
            index.search([test["query"].iloc[i]], qv[i : i + 1], k=10)
        per_query = (time.perf_counter() - t0) / min(200, len(test))
        t0 = time.perf_counter()
        for i in range(min(200, len(test))):
            index.search([test["query"].iloc[i]], qv[i : i + 1], k=10, rerank=False)
        rerank_ms = round(1000 * (per_query - (time.perf_counter() - t0) / min(200, len(test))), 3)
    out = {
        "seed": seed,
        "docs": len(docs),
        "test_queries": len(test),
        "train_seconds": round(train_s, 1),
        "epochs": model.history["epochs"],
        "metrics": res,
        "best_single_stage": best_single,
        "fusion": chosen.label(),
        "validation_curve": stages["fusion_curve"],
        "reranker": reranker.to_dict()["params"] if reranker is not None else None,
        "rerank": kept.rerank_label,
        "rerank_validation_curve": stages["rerank_curve"],
        "second_stage_train_seconds": round(stages_s, 1),
        **second_encoder_test(stages, index, docs, test, qv),
        "rerank_ms_per_query": rerank_ms,
        "hybrid_above_best_single": res["hybrid"]["mrr@10"] > res[best_single]["mrr@10"],
        "pagerank": {"min": float(index.pr.min()), "max": float(index.pr.max())},
    }
    print(
        f"  {name}: "
        + ", ".join(f"{m} MRR@10 {v['mrr@10']:.4f} R@5 {v['recall@5']:.3f}" for m, v in res.items()),
        flush=True,
    )
    return out


def second_encoder_test(stages: dict, index, docs, test, qv) -> dict:
    """Test MRR@10 of every second stage built on the second encoder, whether validation kept it
    or not (the choice is validation's; this shows what each would have given)."""
    from assets.evaluation.faq import retrieval_metrics
    from assets.retrieval.kb_rerank import KbReranker, KbRerankParams

    second = stages.get("second")
    if second is None:
        return {}
    second = second.with_docs(docs)
    rel, q = test["doc_id"].to_numpy(), test["query"].tolist()
    out = {}
    for depth in (10, 20):
        p = KbRerankParams(depth=depth, method="encoder")
        ranked = index.with_reranker(KbReranker(None, p, second)).search(q, qv, k=10)[0]
        out[p.label()] = retrieval_metrics(ranked, rel)["mrr@10"]
    vec = second.encoder.encode(q) @ second.doc_vecs.T
    out["second encoder as the vector stage"] = retrieval_metrics(
        second.doc_ids[vec.argsort(1)[:, ::-1][:, :10]], rel
    )["mrr@10"]
    return {"second_encoder_test_mrr@10": out}


def over_seeds(runs: list[dict]) -> dict:
    """The runs, and their mean test metrics per mode: what the report shows."""
    import statistics

    modes = [m for m in runs[0]["metrics"] if all(m in r["metrics"] for r in runs)]
    first = {k: v for k, v in runs[0].items() if k in ("docs", "test_queries")}
    return {
        **first,
        "seeds": len(runs),
        "metrics": {
            m: {k: statistics.mean(r["metrics"][m][k] for r in runs) for k in runs[0]["metrics"][m]}
            for m in modes
        },
        "fusion": "; ".join(sorted({r["fusion"] for r in runs})),
        "reranker": next((r["reranker"] for r in runs if r["reranker"]), None),
        "reranker_kept_in_seeds": sum(bool(r["reranker"]) for r in runs),
        "hybrid_above_best_single": all(r["hybrid_above_best_single"] for r in runs),
        "runs": runs,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="+", default=["afqmc"], choices=["afqmc", "banking77"])
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    prev = RESULTS / "kb_hybrid.json"
    res = json.loads(prev.read_text())["results"] if prev.exists() else {}
    for name in args.sets:
        if not (SHARED / name).exists():
            print(f"  {name} skipped: {SHARED / name} not found")
            continue
        res[name] = over_seeds([bench_set(name, args.max_epochs, s) for s in range(args.seeds)])
        write_result("kb_hybrid", {"results": res})
    path = write_result("kb_hybrid", {"results": res})
    print(f"written {path}")
    return res


if __name__ == "__main__":
    main()
