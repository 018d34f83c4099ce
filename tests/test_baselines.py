"""The benchmark baselines: SAR-style Jaccard scores by hand, BPR's shape and exclusions."""

import numpy as np
import pandas as pd

from assets.evaluation.baselines import recommend_bpr, recommend_item_similarity


def test_sar_scores_are_jaccard_sums_over_the_users_items():
    # Users 1: {10, 11}, 2: {10, 12}, 3: {11, 12, 13}. Jaccard(10,12) = 1/3, (11,12) = 1/3,
    # (11,13) = 1/2, (10,13) = 0. User 1's unseen items: 12 scores 1/3 + 1/3, 13 scores 0 + 1/2.
    train = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3, 3], "item_id": [10, 11, 10, 12, 11, 12, 13]})
    users, items = pd.Index([1, 2, 3]), pd.Index([10, 11, 12, 13])
    rec = recommend_item_similarity(train, users, items, k=3)
    assert rec[0].tolist() == [2, 3, -1]  # 12 (2/3) before 13 (1/2); seen items never returned
    assert rec[2].tolist() == [0, -1, -1]  # user 3 has only item 10 left
    assert recommend_item_similarity(train, users, items, k=3, batch=1).tolist() == rec.tolist()


def test_bpr_returns_unseen_item_positions_per_user():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"user_id": rng.integers(0, 30, 400), "item_id": rng.integers(0, 40, 400)})
    users, items = pd.Index(np.sort(train.user_id.unique())), pd.Index(np.sort(train.item_id.unique()))
    rec = recommend_bpr(train, users, items, k=5, factors=8, iterations=5)
    assert rec.shape == (len(users), 5) and rec.min() >= 0
    seen = set(zip(users.get_indexer(train.user_id), items.get_indexer(train.item_id)))
    assert not any((u, i) in seen for u in range(len(users)) for i in rec[u])


def test_sar_normalises_co_occurrence_by_jaccard_not_raw_counts():
    # X (0) is held by users 0-2. P (1) co-occurs with X twice but is held by 6 users: J = 2/7.
    # R (2) co-occurs with X once and is held by that user only: J = 1/3. Raw counts would rank P first.
    rows = [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), *[(u, 1) for u in (3, 4, 5, 6)]]
    train = pd.DataFrame(rows, columns=["user_id", "item_id"])
    rec = recommend_item_similarity(train, pd.Index(range(7)), pd.Index([0, 1, 2]), k=2)
    assert rec[0].tolist() == [2, 1]
