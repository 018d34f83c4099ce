"""ALS tuned against default, with the test split untouched by tuning, on two public sets.

Per set: a per-user random 75/25 split, all ratings as positives (binary), k=10. ``tune_als``
searches on the 75 % (carving its own per-user last-1 validation split out of it); then the
default and the tuned parameters each train on the whole 75 % and are scored once on the 25 %.

    python -m benchmarks.als_tuning [--trials 30] [--timeout 300]   # writes benchmarks/results/als_tuning.json
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks.common import run_sets

SHARED = Path(os.environ.get("RECSTACK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SETS = {"ml-latest-small": "ratings.csv", "movietweetings-100k": "ratings.dat"}


def bench_set(name: str, trials: int, timeout: float) -> dict:
    from assets.embeddings.als import AlsParams, train_als
    from assets.evaluation.assets import evaluate_als_vs_popularity
    from assets.evaluation.offline import SplitSpec, split_interactions
    from assets.evaluation.tuning import ndcg_score, tune_als
    from assets.ingest.loaders import ImplicitConversion, load_interaction_file

    df = ImplicitConversion("binary").apply(load_interaction_file(SHARED / name / SETS[name])[0])
    train, test = split_interactions(df, SplitSpec("random", test_fraction=0.25, seed=7))
    res = tune_als(train, ndcg_score(10), n_trials=trials, timeout_s=timeout, seed=0)
    default = evaluate_als_vs_popularity(train, test, train_als("implicit", train, AlsParams()), 10)
    tuned = evaluate_als_vs_popularity(train, test, train_als("implicit", train, AlsParams(**res["best_params"])), 10)
    out = {"pairs": len(df), "trials": len(res["trials"]), "tuning_seconds": res["seconds"], "best_params": res["best_params"],
           "validation_ndcg@10": {"default": res["default_value"], "tuned": res["best_value"]},
           "test_ndcg@10": {"default": default["als"]["ndcg@10"], "tuned": tuned["als"]["ndcg@10"],
                            "popularity": default["popularity"]["ndcg@10"]},
           "test_recall@10": {"default": default["als"]["recall@10"], "tuned": tuned["als"]["recall@10"]}}
    out["test_lift"] = out["test_ndcg@10"]["tuned"] / out["test_ndcg@10"]["default"]
    print(f"  {name}: test NDCG@10 default {out['test_ndcg@10']['default']:.4f} -> tuned {out['test_ndcg@10']['tuned']:.4f} "
          f"(x{out['test_lift']:.3f}; {out['trials']} trials, {res['seconds']} s)", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args(argv)
    return run_sets("als_tuning", SETS, SHARED, lambda name: bench_set(name, args.trials, args.timeout))


if __name__ == "__main__":
    main()
