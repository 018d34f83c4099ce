"""ALS tuned against its defaults, BPR, SAR-style item similarity and popularity, on two public sets.

The protocol of Microsoft Recommenders' MovieLens benchmark: a per-user stratified random 75/25
split, every rating an implicit positive (binary), top-10 with the training items removed.
``tune_als`` is given that split rule, so its confirmation split and its three validation folds
are random 25 % draws carved from the 75 % (never from the 25 %). Then the defaults, the adopted
parameters (the tuned ones only if confirmation kept them) and the baselines each train once on the
whole 75 % and are scored once on the 25 %.

    python -m benchmarks.als_tuning [--trials 30] [--timeout 600]   # writes results/als_tuning.json
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from benchmarks.common import run_sets
from recstack import settings

SHARED = settings.shared_data()
SETS = {"ml-latest-small": "ratings.csv", "movietweetings-100k": "ratings.dat"}
K = 10


def bench_set(name: str, trials: int, timeout: float) -> dict:
    import pandas as pd

    from assets.common.tuned import adopted_fields
    from assets.embeddings.als import AlsParams, train_als
    from assets.evaluation.baselines import recommend_bpr, recommend_item_similarity
    from assets.evaluation.offline import (
        SplitSpec,
        evaluate_als_vs_popularity,
        evaluate_recommendations,
        split_interactions,
    )
    from assets.ingest.loaders import ImplicitConversion, load_interaction_file
    from assets.tuning.search import ndcg_score, tune_als

    df = ImplicitConversion("binary").apply(load_interaction_file(SHARED / name / SETS[name])[0])
    split = SplitSpec("random", test_fraction=0.25, seed=7)
    train, test = split_interactions(df, split)
    res = tune_als(train, ndcg_score(K), n_trials=trials, timeout_s=timeout, seed=0, split=split)
    used = replace(AlsParams(), **adopted_fields({**res, "searched": ["rank", "reg", "alpha", "iterations"]}))
    default = evaluate_als_vs_popularity(train, test, train_als("implicit", train, AlsParams()), K)
    tuned = evaluate_als_vs_popularity(train, test, train_als("implicit", train, used), K)
    users, items = pd.Index(sorted(train["user_id"].unique())), pd.Index(sorted(train["item_id"].unique()))
    t0 = time.perf_counter()
    bpr = evaluate_recommendations(recommend_bpr(train, users, items, K), test, users, items, K)
    bpr_s = time.perf_counter() - t0
    sar = evaluate_recommendations(recommend_item_similarity(train, users, items, K), test, users, items, K)
    metrics = ("ndcg@10", "precision@10", "recall@10", "map@10")
    table = {
        "als_default": default["als"],
        "als_tuned": tuned["als"],
        "bpr": bpr,
        "sar_jaccard": sar,
        "popularity": default["popularity"],
    }
    out = {
        "pairs": len(df),
        "users": int(df["user_id"].nunique()),
        "items": int(df["item_id"].nunique()),
        "trials": len(res["trials"]),
        "stopped_early": res["stopped_early"],
        "tuning_seconds": res["seconds"],
        "rank_bound": res["rank_bound"],
        "searched_best": res["best_params"],
        "adopted": res["adopted"],
        "used_params": used.__dict__,
        "bpr_seconds": round(bpr_s, 1),
        "validation_ndcg@10": {"default": res["default_value"], "tuned": res["best_value"]},
        "confirmation_ndcg@10": res["confirmation"],
        "test": {m: {model: r[m] for model, r in table.items()} for m in metrics},
    }
    t = out["test"]["ndcg@10"]
    out["test_lift"] = t["als_tuned"] / t["als_default"]
    out["als_tuned_vs_bpr"] = t["als_tuned"] / t["bpr"]
    out["als_tuned_vs_sar"] = t["als_tuned"] / t["sar_jaccard"]
    print(
        f"  {name}: test NDCG@10 ALS default {t['als_default']:.4f} -> "
        f"{'tuned' if res['adopted'] else 'kept'} "
        f"{t['als_tuned']:.4f} (x{out['test_lift']:.3f}); BPR {t['bpr']:.4f}, SAR {t['sar_jaccard']:.4f}, "
        f"popularity {t['popularity']:.4f} ({out['trials']} trials, {res['seconds']} s)",
        flush=True,
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    return run_sets(
        "als_tuning",
        SETS,
        SHARED,
        lambda name: bench_set(name, args.trials, args.timeout),
        extra={
            "protocol": "per-user random 75/25 (seed 7), binary, k=10, seen items removed; tuning: "
            "confirmation + 3 random folds carved from the 75 %, margin 2 %"
        },
    )


if __name__ == "__main__":
    main()
