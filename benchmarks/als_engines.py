"""ALS engines: Spark MLlib (local[2]) vs the single-node ``implicit`` engine, same parameters.

For each dataset (ml-latest-small when ``../shared/data`` has it; synthetic 5M interactions),
both engines train with the same rank, regularisation, alpha and iterations on the same split;
reported: training seconds (Spark after one untimed warm-up job), the time ratio, and NDCG@10 /
recall@10 on the held-out split (mean and spread over 3 seeds, 2 on the synthetic set; there over a
10,000-user evaluation sample). The ``implicit`` engine minimises Spark's objective (λ scaled by
each row's interaction count) from Spark's kind of start; ``implicit_native`` is the library as it
is (constant λ, small uniform start), shown for contrast.

Run: ``python -m benchmarks.als_engines [--synthetic N] [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import pandas as pd

from benchmarks.common import write_result
from recstack import settings

SHARED = settings.shared_data()


def evaluate(train, test, model, k=10, sample=10_000, seed=0):
    from assets.common.topk import interaction_mask
    from assets.evaluation.offline import evaluate_recommendations, recommend_from_factors

    users, items = pd.Index(model.user_ids), pd.Index(model.item_ids)
    test_users = np.intersect1d(test["user_id"].unique(), model.user_ids)
    if len(test_users) > sample:
        test_users = np.sort(np.random.default_rng(seed).choice(test_users, sample, replace=False))
    rows = users.get_indexer(test_users)
    sub = pd.Index(test_users)
    seen = interaction_mask(train[train["user_id"].isin(sub)], sub, items)
    rec = recommend_from_factors(model.user_factors[rows], model.item_factors, k, exclude=seen)
    return evaluate_recommendations(rec, test, sub, items, k)


def bench_dataset(name, df, params_kw, seeds, spark):
    from assets.embeddings.als import AlsParams, train_als
    from assets.evaluation.offline import SplitSpec, split_interactions

    train, test = split_interactions(df, SplitSpec("last_n", n=5 if name == "ml-latest-small" else 1))
    out = {"interactions": len(df), "train_pairs": len(train), "test_pairs": len(test), "params": params_kw}
    from assets.embeddings.als_cpu import train_als_cpu

    engines = {
        "spark": lambda p: train_als("spark", train, p, spark=spark),
        "implicit": lambda p: train_als("implicit", train, p),  # Spark's objective and start (the default)
        "implicit_native": lambda p: train_als_cpu(train, p, match_spark=False),
    }  # implicit as it is
    for engine, fit in engines.items():
        runs = []
        for s in range(seeds):
            m = fit(AlsParams(seed=s, **params_kw))
            r = evaluate(train, test, m)
            runs.append(
                {"seconds": m.params["train_seconds"], "ndcg@10": r["ndcg@10"], "recall@10": r["recall@10"]}
            )
            print(
                f"  {name} {engine:<15} seed {s}: {m.params['train_seconds']:7.2f}s  NDCG@10 "
                f"{r['ndcg@10']:.4f}"
            )
        out[engine] = {
            "runs": runs,
            **{f"{k}_mean": statistics.mean(x[k] for x in runs) for k in runs[0]},
            **{f"{k}_stdev": statistics.pstdev(x[k] for x in runs) for k in ("ndcg@10", "recall@10")},
        }
    out["speedup_implicit_vs_spark"] = out["spark"]["seconds_mean"] / out["implicit"]["seconds_mean"]
    out["ndcg_rel_diff"] = (
        abs(out["implicit"]["ndcg@10_mean"] - out["spark"]["ndcg@10_mean"]) / out["spark"]["ndcg@10_mean"]
    )
    out["ndcg_rel_diff_native"] = (
        abs(out["implicit_native"]["ndcg@10_mean"] - out["spark"]["ndcg@10_mean"])
        / out["spark"]["ndcg@10_mean"]
    )
    out["speedup_native_vs_spark"] = out["spark"]["seconds_mean"] / out["implicit_native"]["seconds_mean"]
    print(
        f"  {name}: implicit {out['speedup_implicit_vs_spark']:.1f}x faster; NDCG@10 spark "
        f"{out['spark']['ndcg@10_mean']:.4f}"
        f" ± {out['spark']['ndcg@10_stdev']:.4f}, implicit {out['implicit']['ndcg@10_mean']:.4f} ± "
        f"{out['implicit']['ndcg@10_stdev']:.4f}"
        f" (relative difference {out['ndcg_rel_diff']:.1%})"
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--synthetic", type=int, default=5_000_000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    settings.configure_process()
    from assets.embeddings.als import AlsParams
    from assets.embeddings.als_spark import train_als_spark
    from assets.ingest.loaders import ImplicitConversion, load_interaction_file
    from assets.ingest.synthetic import SyntheticSpec, generate_interactions
    from resources.spark import SparkResource

    spark = SparkResource(master="local[2]", driver_memory="8g").get_session()
    warm, _ = generate_interactions(SyntheticSpec(n_interactions=2000, seed=9))
    train_als_spark(
        spark, ImplicitConversion("binary").apply(warm), AlsParams(rank=4, iterations=2)
    )  # untimed warm-up
    params = {"rank": 32, "reg": 0.05, "alpha": 10.0, "iterations": 10}
    res = {}
    ml = SHARED / "ml-latest-small" / "ratings.csv"
    if ml.exists():
        df = ImplicitConversion("binary", min_rating=3.5).apply(load_interaction_file(ml)[0])
        res["ml-latest-small"] = bench_dataset("ml-latest-small", df, params, args.seeds, spark)
    else:
        print(f"  ml-latest-small skipped: {ml} not found")
    raw, _ = generate_interactions(SyntheticSpec(n_interactions=args.synthetic, seed=1))
    res[f"synthetic-{args.synthetic}"] = bench_dataset(
        "synthetic", ImplicitConversion("binary").apply(raw), params, max(1, args.seeds - 1), spark
    )
    spark.stop()
    path = write_result("als_engines", {"results": res})
    print(f"written {path}")
    return res


if __name__ == "__main__":
    main()
