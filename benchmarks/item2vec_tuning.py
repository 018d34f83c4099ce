"""item2vec tuned against default, with the test split untouched by tuning, on two public sets.

Per set: all ratings as positives, each user's last interaction (by time) held out as the test,
1-hour sessions, k=10. ``tune_item2vec`` is given that split rule: its confirmation split is each
user's last *training* interaction and its validation folds step further back in time, all
inside the training part. ``item2vec_model``'s defaults and the adopted parameters (the tuned
ones only if they confirmed) each train on the whole training part and are scored once on the
test; the search's raw winner is scored too, to show what confirmation protects against. NDCG@10
is over every test user with history (users item2vec cannot serve count as 0), the same users
popularity is scored on.

    python -m benchmarks.item2vec_tuning [--trials 16] [--folds 2] [--timeout 600]

writes ``benchmarks/results/item2vec_tuning.json``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict

from benchmarks.als_tuning import SETS, SHARED
from benchmarks.common import run_sets

GAP_SECONDS = 3600
SEARCHED = ("window", "negative", "min_count", "recency_half_life_days")


def popularity_ndcg(train, test, k: int = 10) -> float:
    """Popularity's NDCG@k on every test user with history (seen items excluded)."""
    import pandas as pd

    from assets.common.topk import interaction_mask
    from assets.evaluation.offline import evaluate_recommendations, recommend_popular

    test = test[test["user_id"].isin(train["user_id"]) & test["item_id"].isin(train["item_id"])]
    users, items = pd.Index(test["user_id"].unique()), pd.Index(train["item_id"].unique())
    seen = interaction_mask(train[train["user_id"].isin(users)], users, items)
    return evaluate_recommendations(
        recommend_popular(train, len(users), items, k, seen), test, users, items, k
    )[f"ndcg@{k}"]


def bench_set(name: str, trials: int, folds: int, timeout: float) -> dict:
    from assets.embeddings.item2vec import Item2VecParams, fit_item2vec, sessionize
    from assets.embeddings.item2vec_assets import Item2VecConfig
    from assets.evaluation.offline import SplitSpec, split_interactions
    from assets.ingest.loaders import ImplicitConversion, load_interaction_file
    from assets.tuning.protocol import TuningProtocol
    from assets.tuning.search import ndcg_all_users, tune_item2vec

    df = ImplicitConversion("binary").apply(load_interaction_file(SHARED / name / SETS[name])[0])
    split = SplitSpec("last_n", n=1)
    train, test = split_interactions(df, split)
    default = Item2VecConfig(use_tuned=False).params()
    res = tune_item2vec(
        train,
        default,
        GAP_SECONDS,
        n_trials=trials,
        timeout_s=timeout,
        seed=0,
        split=split,
        protocol=TuningProtocol(folds=folds),
    )
    sessions = sessionize(train, GAP_SECONDS)
    winner = Item2VecParams(**res["best_params"])
    used = Item2VecConfig(use_tuned=True).params({**res, "searched": list(SEARCHED)})
    score = {
        label: ndcg_all_users(fit_item2vec(sessions, train, p), train, test, 10)
        for label, p in (("default", default), ("search_winner", winner))
    }
    score["adopted"] = score["search_winner"] if res["adopted"] else score["default"]
    assert (used == winner) == res["adopted"] or winner == default
    out = {
        "pairs": len(df),
        "trials": len(res["trials"]),
        "folds": folds,
        "stopped_early": res["stopped_early"],
        "tuning_seconds": res["seconds"],
        "default_params": {k: asdict(default)[k] for k in SEARCHED},
        "best_params": {k: res["best_params"][k] for k in SEARCHED},
        "adopted": res["adopted"],
        "validation_ndcg@10": {"default": res["default_value"], "tuned": res["best_value"]},
        "confirmation_ndcg@10": res["confirmation"],
        "test_ndcg@10": {**score, "popularity": popularity_ndcg(train, test)},
    }
    out["test_lift"] = score["adopted"] / score["default"] if score["default"] else None
    print(
        f"  {name}: test NDCG@10 default {score['default']:.4f} -> {'tuned' if res['adopted'] else 'kept'} "
        f"{score['adopted']:.4f} (search winner {score['search_winner']:.4f}, popularity "
        f"{out['test_ndcg@10']['popularity']:.4f}; {out['trials']} trials, {res['seconds']} s)",
        flush=True,
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("gensim").setLevel(logging.WARNING)  # per-epoch lines, thousands of them
    return run_sets(
        "item2vec_tuning",
        SETS,
        SHARED,
        lambda name: bench_set(name, args.trials, args.folds, args.timeout),
        {"session_gap_seconds": GAP_SECONDS},
    )


if __name__ == "__main__":
    main()
