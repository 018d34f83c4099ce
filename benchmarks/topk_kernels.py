"""Batched top-k against the per-user loop it replaced, in one run.

Workload: 10,000 users × 10,000 items (rank 32 factors), k=10, excluding each user's seen items
(50 per user on average, 500k pairs). The baseline is ``FactorModel.recommend`` as it was before
the one batched ``topk``: a Python loop per user with a full ``argsort``.

    python -m benchmarks.topk_kernels            # writes benchmarks/results/topk.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from benchmarks.common import write_result


def per_user_loop(model, user_ids, k, exclude: dict):
    """The pre-``topk`` recommend: one matrix-vector product and one argsort per user."""
    pos = {int(u): i for i, u in enumerate(model.user_ids)}
    k = min(k, len(model.item_ids))
    ids = np.full((len(user_ids), k), -1, dtype=np.int64)
    scores = np.full((len(user_ids), k), -np.inf, dtype=np.float32)
    item_pos = {int(it): j for j, it in enumerate(model.item_ids)}
    for r, u in enumerate(np.asarray(user_ids)):
        i = pos.get(int(u))
        if i is None:
            continue
        s = model.item_factors @ model.user_factors[i]
        for it in exclude.get(int(u), ()):
            j = item_pos.get(int(it))
            if j is not None:
                s[j] = -np.inf
        top = np.argsort(-s, kind="stable")[:k]
        ok = np.isfinite(s[top])
        ids[r, : ok.sum()] = model.item_ids[top[ok]]
        scores[r, : ok.sum()] = s[top[ok]]
    return ids, scores


def workload(n_users: int, n_items: int, rank: int, seen_per_user: int, seed: int = 0):
    from assets.embeddings.factor_model import FactorModel

    rng = np.random.default_rng(seed)
    model = FactorModel(
        np.arange(n_users, dtype=np.int64),
        rng.normal(size=(n_users, rank)).astype(np.float32),
        np.arange(n_items, dtype=np.int64) * 7,
        rng.normal(size=(n_items, rank)).astype(np.float32),
    )
    seen = pd.DataFrame(
        {
            "user_id": np.repeat(model.user_ids, seen_per_user),
            "item_id": rng.choice(model.item_ids, n_users * seen_per_user),
        }
    ).drop_duplicates()
    return model, seen


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    model, seen = workload(args.users, args.items, 32, 50)
    as_dict = {int(u): g.to_numpy() for u, g in seen.groupby("user_id")["item_id"]}
    users = model.user_ids
    batched = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ids, sc = model.recommend(users, args.k, exclude=seen)
        batched.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ref_ids, ref_sc = per_user_loop(model, users, args.k, as_dict)
    loop_s = time.perf_counter() - t0
    same = float((ids == ref_ids).mean())
    res = {
        "workload": {
            "users": args.users,
            "items": args.items,
            "rank": 32,
            "k": args.k,
            "seen_pairs": len(seen),
        },
        "batched_topk_seconds": round(min(batched), 3),
        "per_user_loop_seconds": round(loop_s, 3),
        "speedup": round(loop_s / min(batched), 1),
        "identical_ids_fraction": same,
        "max_score_diff": float(np.nanmax(np.abs(np.where(np.isfinite(sc), sc - ref_sc, 0)))),
    }
    path = write_result("topk", res)
    print(
        f"batched topk {res['batched_topk_seconds']}s vs per-user loop {res['per_user_loop_seconds']}s "
        f"({res['speedup']}x); identical ids {same:.4f} -> {path}"
    )
    return res


if __name__ == "__main__":
    main()
