"""FAQ retrieval: the two-tower encoder vs BM25 on BANKING77 and AFQMC (the issue's target).

For each set the same corpus and tokenisation feed both methods. BM25 (bm25s) indexes each FAQ
entry's title and similar questions; the two-tower trains from scratch on the training pairs,
early-stops on a retrieval validation split held out of the training queries (never the test),
and ranks entries by the re-normalised mean of their title and question vectors. Reported:
recall@1, recall@5, MRR@10 on the test queries per training seed and their mean, training time,
epochs, the MRR@10 ratio two-tower / BM25, and whether every seed beats BM25.

Run: ``python -m benchmarks.faq_retrieval [--sets banking77 afqmc] [--max-epochs N] [--seeds 2]``
(about 7 minutes per BANKING77 training and 5 per AFQMC training on 2 CPU cores; a GPU is used
when present).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from benchmarks.common import RESULTS, write_result
from recstack import settings

SHARED = settings.shared_data()

# Chosen on the validation split only (see README: two-tower section).
PARAMS = {
    "banking77": {
        "dim": 128,
        "out_dim": 128,
        "batch_size": 64,
        "max_epochs": 10,
        "lr": 2e-3,
        "max_len": 32,
        "token_dropout": 0.1,
        "patience": 3,
    },
    "afqmc": {
        "dim": 128,
        "out_dim": 128,
        "batch_size": 64,
        "max_epochs": 10,
        "lr": 2e-3,
        "max_len": 48,
        "token_dropout": 0.1,
        "patience": 3,
    },
}


def train_on_holdout(train, val_docs, val_queries, params):
    """The two-tower trained on ``train`` pairs, early-stopped on retrieval MRR@10 of the held-out
    ``val_queries`` against ``val_docs`` (what :func:`~assets.evaluation.faq.holdout` returns)."""
    from assets.embeddings.two_tower import train_two_tower
    from assets.evaluation.faq import evaluate_encoder

    return train_two_tower(
        train["query"].tolist(),
        train["positive"].tolist(),
        train["doc_id"].tolist(),
        params,
        validate=lambda m: evaluate_encoder(m.encode, val_docs, val_queries)["mrr@10"],
    )


def bench_set(name: str, max_epochs: int | None = None, seeds: int = 1) -> dict:
    """BM25 and the two-tower (``seeds`` trainings) on one dataset: metrics and the MRR@10 ratio."""
    import statistics

    from assets.embeddings.two_tower import TwoTowerParams
    from assets.evaluation.faq import (
        bm25_rank,
        evaluate_encoder,
        holdout,
        load_afqmc,
        load_banking77,
        retrieval_metrics,
    )

    data = (load_banking77 if name == "banking77" else load_afqmc)(SHARED / name)
    docs, test, tok = data["docs"], data["test"], data["tokenizer"]
    out = {"docs": len(docs), "train_pairs": len(data["train"]), "test_queries": len(test)}
    t0 = time.perf_counter()
    out["bm25"] = retrieval_metrics(bm25_rank(docs, test["query"].tolist(), tok), test["doc_id"].to_numpy())
    out["bm25"]["seconds"] = round(time.perf_counter() - t0, 2)
    print(f"  {name}: BM25 {out['bm25']}", flush=True)

    train, val_docs, val_queries = holdout(data)
    runs = []
    for seed in range(seeds):
        kw = dict(PARAMS[name], tokenizer=tok, val_fraction=0.0, seed=seed)
        if max_epochs:
            kw["max_epochs"] = max_epochs
        model = train_on_holdout(train, val_docs, val_queries, TwoTowerParams(**kw))
        h = model.history
        runs.append(
            {
                **evaluate_encoder(model.encode, docs, test),
                "seconds": h["train_seconds"],
                "epochs": h["epochs"],
                "best_val_mrr@10": h["best_val_mrr"],
                "val_mrr@10_by_epoch": h["val_mrr"],
                "device": h["device"],
                "params": kw,
                "vocab": len(model.vocab),
            }
        )
        print(
            f"  {name} seed {seed}: two-tower {runs[-1]['mrr@10']:.4f} ({h['epochs']} epochs, "
            f"{h['train_seconds']} s)",
            flush=True,
        )
    out["two_tower"] = {
        "runs": runs,
        **{f"{k}_mean": statistics.mean(r[k] for r in runs) for k in ("recall@1", "recall@5", "mrr@10")},
        "mrr@10_min": min(r["mrr@10"] for r in runs),
    }
    out["mrr_ratio_two_tower_vs_bm25"] = out["two_tower"]["mrr@10_mean"] / out["bm25"]["mrr@10"]
    out["every_seed_beats_bm25"] = out["two_tower"]["mrr@10_min"] > out["bm25"]["mrr@10"]
    print(
        f"  {name}: two-tower MRR@10 {out['two_tower']['mrr@10_mean']:.4f} (min "
        f"{out['two_tower']['mrr@10_min']:.4f} over {seeds})"
        f" vs BM25 {out['bm25']['mrr@10']:.4f} (×{out['mrr_ratio_two_tower_vs_bm25']:.3f})",
        flush=True,
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="+", default=["banking77", "afqmc"])
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    prev = RESULTS / "faq_retrieval.json"  # a run of some sets keeps the others' last results
    res = json.loads(prev.read_text())["results"] if prev.exists() else {}
    for name in args.sets:
        if not (SHARED / name).exists():
            print(f"  {name} skipped: {SHARED / name} not found")
            continue
        res[name] = bench_set(name, args.max_epochs, args.seeds)
    path = write_result("faq_retrieval", {"results": res})
    print(f"written {path}")
    return res


if __name__ == "__main__":
    main()
