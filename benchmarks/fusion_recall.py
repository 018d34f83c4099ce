"""Fused ALS + item2vec lists against each source alone and popularity, on two public sets.

The protocol of ``recommendation_fusion``: a global time split (the latest 10 % of each set's
ratings is the test split, so it holds users who arrived after the cut), every rating an implicit
positive (binary), top-10 with the training items removed. The fusion is chosen on validation
carved from the training 90 % by the same time rule (its latest 10 %), the sources refit on the
whole 90 %, and every method is scored over *all* test users, cold ones included, each with the
same popularity fallback.

    python -m benchmarks.fusion_recall   # writes results/fusion_recall.json
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from benchmarks.common import run_sets
from recstack import settings

SHARED = settings.shared_data()
SETS = {"ml-latest-small": "ratings.csv", "movietweetings-100k": "ratings.dat"}
K = 10


def bench_set(name: str) -> dict:
    from assets.embeddings.als import AlsParams, train_als
    from assets.embeddings.item2vec import Item2VecParams, SessionSpec, fit_item2vec, sessionize
    from assets.evaluation.fusion import choose_fusion, compare_methods, time_split
    from assets.ingest.loaders import ImplicitConversion, load_interaction_file

    df = ImplicitConversion("binary").apply(load_interaction_file(SHARED / name / SETS[name])[0])

    def fit_sources(d):
        return {
            "als": train_als("implicit", d, AlsParams()),
            "item2vec": fit_item2vec(sessionize(d, SessionSpec.gap_seconds), d, Item2VecParams()),
        }

    t0 = time.perf_counter()
    train, test = time_split(df, 0.1)
    chosen, trials = choose_fusion(train, fit_sources, K, 0.1)
    metrics = compare_methods(train, test, fit_sources(train), chosen, K)
    best = max(("als", "item2vec"), key=lambda s: metrics[s][f"ndcg@{K}"])
    out = {
        "pairs": len(df),
        "test_users": metrics["fused"]["n_users"],
        "cold_test_users": metrics["fused"]["cold_users"],
        "chosen": asdict(chosen),
        "validation": trials,
        "test": metrics,
        "best_single": best,
        "fused_over_best_single": {
            m: round(metrics["fused"][m] / metrics[best][m], 4) if metrics[best][m] else None
            for m in (f"ndcg@{K}", f"recall@{K}")
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out["target_fused_beats_best_single"] = all(
        v is not None and v > 1 for v in out["fused_over_best_single"].values()
    )
    print(
        f"  {name}: {chosen.method} (ALS weight {chosen.als_weight}); test NDCG@10 fused "
        f"{metrics['fused'][f'ndcg@{K}']:.4f}, ALS {metrics['als'][f'ndcg@{K}']:.4f}, item2vec "
        f"{metrics['item2vec'][f'ndcg@{K}']:.4f}, popularity {metrics['popularity'][f'ndcg@{K}']:.4f} "
        f"over {out['test_users']} users ({out['cold_test_users']} cold)",
        flush=True,
    )
    return out


def main(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    return run_sets(
        "fusion_recall",
        SETS,
        SHARED,
        bench_set,
        extra={
            "protocol": "global time split (latest 10 % test), binary, k=10, seen items removed; the fusion "
            "chosen on the latest 10 % of the training part; every test user scored, cold ones with the "
            "popularity fallback"
        },
    )


if __name__ == "__main__":
    main()
