"""item2vec tuned against default, with the test split untouched by tuning, on two public sets.

Per set: all ratings as positives, each user's last interaction (by time) held out as the test,
1-hour sessions, k=10. ``tune_item2vec`` searches window, negative, min_count and the recency
half-life on the training part only (carving its own per-user last-1 validation split out of
it); then ``item2vec_model``'s defaults and the tuned parameters each train on the whole training
part and are scored once on the test. NDCG@10 is over every test user with history (users item2vec
cannot serve count as 0), the same users popularity is scored on.

    python -m benchmarks.item2vec_tuning [--trials 60] [--timeout 600]   # writes benchmarks/results/item2vec_tuning.json
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict

from benchmarks.als_tuning import SETS, SHARED
from benchmarks.common import run_sets

GAP_SECONDS = 3600


def popularity_ndcg(train, test, k: int = 10) -> float:
    """Popularity's NDCG@k on every test user with history (seen items excluded)."""
    import pandas as pd

    from assets.common.topk import interaction_mask
    from assets.evaluation.offline import evaluate_recommendations, recommend_popular

    test = test[test["user_id"].isin(train["user_id"]) & test["item_id"].isin(train["item_id"])]
    users, items = pd.Index(test["user_id"].unique()), pd.Index(train["item_id"].unique())
    seen = interaction_mask(train[train["user_id"].isin(users)], users, items)
    return evaluate_recommendations(recommend_popular(train, len(users), items, k, seen), test, users, items, k)[f"ndcg@{k}"]


def bench_set(name: str, trials: int, timeout: float) -> dict:
    from assets.embeddings.item2vec import Item2VecParams, fit_item2vec, sessionize
    from assets.embeddings.item2vec_assets import Item2VecConfig
    from assets.evaluation.offline import SplitSpec, split_interactions
    from assets.evaluation.tuning import ndcg_all_users, tune_item2vec
    from assets.ingest.loaders import ImplicitConversion, load_interaction_file

    df = ImplicitConversion("binary").apply(load_interaction_file(SHARED / name / SETS[name])[0])
    train, test = split_interactions(df, SplitSpec("last_n", n=1))
    default = Item2VecConfig(use_tuned=False).params()
    res = tune_item2vec(train, default, GAP_SECONDS, n_trials=trials, timeout_s=timeout, seed=0)
    sessions = sessionize(train, GAP_SECONDS)
    score = {label: ndcg_all_users(fit_item2vec(sessions, train, p), train, test, 10)
             for label, p in (("default", default), ("tuned", Item2VecParams(**res["best_params"])))}
    searched = ("window", "negative", "min_count", "recency_half_life_days")
    out = {"pairs": len(df), "trials": len(res["trials"]), "tuning_seconds": res["seconds"],
           "default_params": {k: asdict(default)[k] for k in searched},
           "best_params": {k: res["best_params"][k] for k in searched},
           "validation_ndcg@10": {"default": res["default_value"], "tuned": res["best_value"]},
           "test_ndcg@10": {**score, "popularity": popularity_ndcg(train, test)}}
    out["test_lift"] = score["tuned"] / score["default"] if score["default"] else None
    print(f"  {name}: test NDCG@10 default {score['default']:.4f} -> tuned {score['tuned']:.4f} "
          f"(popularity {out['test_ndcg@10']['popularity']:.4f}; {out['trials']} trials, {res['seconds']} s)", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("gensim").setLevel(logging.WARNING)  # per-epoch lines, thousands of them
    return run_sets("item2vec_tuning", SETS, SHARED, lambda name: bench_set(name, args.trials, args.timeout),
                    {"session_gap_seconds": GAP_SECONDS})


if __name__ == "__main__":
    main()
