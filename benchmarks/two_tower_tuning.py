"""The two-tower encoder tuned against default on BANKING77, with the test queries untouched.

The encoder trains from scratch, so a search of many trainings on the full set does not fit this
2-core machine; the search runs on a ``--fraction`` of each intent's training queries (the test
queries and the 77 FAQ entries are the full set's). ``tune_two_tower`` searches tau, lr and the
epoch budget on the training part only: it holds 10 % of the training queries out for
confirmation and 10 % more for validation (removing them from the pairs and the entries' similar
questions), scores each trial by the validation queries' retrieval MRR@10, and adopts the winner
only if it beats the defaults on the confirmation queries. Then ``two_tower_model``'s defaults and
the search's winner each train once more as the confirmation did and are scored on the 3,080
test queries, next to BM25 over the same entries; ``adopted`` is what the pipeline would use.

    python -m benchmarks.two_tower_tuning [--trials 6] [--timeout 1800] [--fraction 0.25]
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, replace

import numpy as np

from benchmarks.common import write_result
from benchmarks.faq_retrieval import SHARED


def subsample(data: dict, fraction: float, seed: int = 0) -> dict:
    """Keep ``fraction`` of each entry's training queries (pairs and similar questions alike)."""
    rng = np.random.default_rng(seed)
    docs = data["docs"].copy()
    docs["questions"] = [
        list(rng.choice(qs, max(2, int(len(qs) * fraction)), replace=False)) for qs in docs["questions"]
    ]
    kept = {q for qs in docs["questions"] for q in qs}
    titles = set(docs["title"])
    train = data["train"]
    train = train[train["query"].isin(kept) & (train["positive"].isin(kept) | train["positive"].isin(titles))]
    return {**data, "docs": docs, "train_docs": docs, "train": train.reset_index(drop=True)}


def bench(trials: int, timeout: float, fraction: float) -> dict:
    from assets.embeddings.two_tower import TwoTowerParams, train_two_tower
    from assets.embeddings.two_tower_assets import TwoTowerConfig
    from assets.evaluation.faq import bm25_rank, evaluate_encoder, load_banking77, retrieval_metrics
    from assets.ingest.kb import doc_texts
    from assets.tuning.search import query_holdouts, tune_two_tower

    data = subsample(load_banking77(SHARED / "banking77"), fraction)
    docs, test = data["docs"], data["test"]
    default = replace(TwoTowerConfig(use_tuned=False).params(), max_len=32)
    res = tune_two_tower(data, default, n_trials=trials, timeout_s=timeout, seed=0)
    # The final models train as the confirmation did: on every training query but the
    # confirmation ones, stopping early on those.
    (pairs, val_docs, val_queries), _ = query_holdouts(data, 0.1, 1, seed=0)
    out = {
        "docs": len(docs),
        "train_pairs": len(data["train"]),
        "fraction": fraction,
        "test_queries": len(test),
        "trials": len(res["trials"]),
        "tuning_seconds": res["seconds"],
        "default_params": {k: asdict(default)[k] for k in ("tau", "lr", "max_epochs")},
        "best_params": {k: res["best_params"][k] for k in ("tau", "lr", "max_epochs")},
        "validation_mrr@10": {"default": res["default_value"], "tuned": res["best_value"]},
        "confirmation_mrr@10": res["confirmation"],
        "adopted": res["adopted"],
        "test": {},
    }
    for label, p in (("default", default), ("search_winner", TwoTowerParams(**res["best_params"]))):
        m = train_two_tower(
            pairs["query"].tolist(),
            pairs["positive"].tolist(),
            pairs["doc_id"].tolist(),
            p,
            corpus=doc_texts(val_docs),
            validate=lambda m: evaluate_encoder(m.encode, val_docs, val_queries)["mrr@10"],
        )
        out["test"][label] = {
            **evaluate_encoder(m.encode, docs, test),
            "epochs": m.history["epochs"],
            "train_seconds": m.history["train_seconds"],
        }
    out["test"]["bm25"] = retrieval_metrics(
        bm25_rank(docs, test["query"].tolist(), "char"), test["doc_id"].to_numpy()
    )
    t = out["test"]
    t["adopted"] = t["search_winner"] if res["adopted"] else t["default"]
    out["test_lift"] = t["adopted"]["mrr@10"] / t["default"]["mrr@10"]
    print(
        f"  banking77 ({fraction:.0%} of training queries): test MRR@10 default "
        f"{t['default']['mrr@10']:.4f} -> "
        f"{'tuned' if res['adopted'] else 'kept'} {t['adopted']['mrr@10']:.4f} (search winner "
        f"{t['search_winner']['mrr@10']:.4f}, BM25 {t['bm25']['mrr@10']:.4f}; {out['trials']} trials, "
        f"{res['seconds']} s)",
        flush=True,
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--fraction", type=float, default=0.25)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not (SHARED / "banking77").exists():
        print(f"  banking77 skipped: {SHARED / 'banking77'} not found")
        return {}
    res = {"banking77": bench(args.trials, args.timeout, args.fraction)}
    path = write_result("two_tower_tuning", {"results": res})
    print(f"written {path}")
    return res


if __name__ == "__main__":
    main()
