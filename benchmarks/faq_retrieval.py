"""FAQ retrieval: the two-tower encoder vs BM25 on BANKING77 and AFQMC (the issue's target).

For each set the same corpus and tokenisation feed both methods. BM25 (bm25s) indexes each FAQ
entry's title and similar questions; the two-tower trains from scratch on the training pairs,
early-stops on a retrieval validation split held out of the training queries (never the test),
and ranks entries by the re-normalised mean of their title and question vectors. Reported:
recall@1, recall@5, MRR@10 on the test queries, training time, epochs, and the MRR@10 ratio
two-tower / BM25.

Run: ``python -m benchmarks.faq_retrieval [--sets banking77 afqmc] [--max-epochs N]``
(about 10 minutes per set on 2 CPU cores; a GPU is used when present).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from benchmarks.common import write_result

SHARED = Path(os.environ.get("RECSTACK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# Chosen on the validation split only (see README: two-tower section).
PARAMS = {
    "banking77": {"dim": 128, "out_dim": 128, "batch_size": 64, "max_epochs": 10, "lr": 2e-3, "max_len": 32,
                  "token_dropout": 0.1, "patience": 3},
    "afqmc": {"dim": 128, "out_dim": 128, "batch_size": 64, "max_epochs": 10, "lr": 2e-3, "max_len": 48,
              "token_dropout": 0.1, "patience": 3},
}


def bench_set(name: str, max_epochs: int | None = None) -> dict:
    """BM25 and the two-tower on one dataset; returns their metrics and the MRR@10 ratio."""
    from assets.embeddings.two_tower import TwoTowerParams, train_two_tower
    from assets.evaluation.faq import (bm25_rank, evaluate_encoder, holdout, load_afqmc, load_banking77,
                                       retrieval_metrics)

    data = (load_banking77 if name == "banking77" else load_afqmc)(SHARED / name)
    docs, test, tok = data["docs"], data["test"], data["tokenizer"]
    out = {"docs": len(docs), "train_pairs": len(data["train"]), "test_queries": len(test)}
    t0 = time.perf_counter()
    out["bm25"] = retrieval_metrics(bm25_rank(docs, test["query"].tolist(), tok), test["doc_id"].to_numpy())
    out["bm25"]["seconds"] = round(time.perf_counter() - t0, 2)
    print(f"  {name}: BM25 {out['bm25']}", flush=True)

    kw = dict(PARAMS[name], tokenizer=tok, val_fraction=0.0)
    if max_epochs:
        kw["max_epochs"] = max_epochs
    train, val_docs, val_queries = holdout(data)
    model = train_two_tower(train["query"].tolist(), train["positive"].tolist(), train["doc_id"].tolist(), TwoTowerParams(**kw),
                            validate=lambda m: evaluate_encoder(m.encode, val_docs, val_queries)["mrr@10"])
    h = model.history
    out["two_tower"] = {**evaluate_encoder(model.encode, docs, test), "seconds": h["train_seconds"], "epochs": h["epochs"],
                        "best_val_mrr@10": h["best_val_mrr"], "val_mrr@10_by_epoch": h["val_mrr"], "device": h["device"],
                        "params": kw, "vocab": len(model.vocab)}
    out["mrr_ratio_two_tower_vs_bm25"] = out["two_tower"]["mrr@10"] / out["bm25"]["mrr@10"]
    print(f"  {name}: two-tower MRR@10 {out['two_tower']['mrr@10']:.4f} vs BM25 {out['bm25']['mrr@10']:.4f}"
          f" (×{out['mrr_ratio_two_tower_vs_bm25']:.3f}), {h['epochs']} epochs in {h['train_seconds']} s", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="+", default=["banking77", "afqmc"])
    ap.add_argument("--max-epochs", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    res = {}
    for name in args.sets:
        if not (SHARED / name).exists():
            print(f"  {name} skipped: {SHARED / name} not found")
            continue
        res[name] = bench_set(name, args.max_epochs)
    path = write_result("faq_retrieval", {"results": res})
    print(f"written {path}")
    return res


if __name__ == "__main__":
    main()
