"""Lookalike strategies on a tiny case that can be checked by hand.

Users live on a circle of angles; users 1-3 are near 0°, users 4-6 near 90°, 7-8 near 180°.
Items 100 (0°), 101 (5°), 200 (90°). Interactions: user 1 → item 100, user 5 → item 200,
user 2 → item 101.
"""

import numpy as np
import pandas as pd

from assets.indexes.faiss_index import VectorIndex
from assets.retrieval.lookalike import i2i2u, i2u2u, u2u


def unit(deg):
    r = np.deg2rad(deg)
    return np.array([np.cos(r), np.sin(r)], np.float32)


USERS = {1: 0, 2: 8, 3: 16, 4: 85, 5: 90, 6: 95, 7: 180, 8: 175}
ITEMS = {100: 0, 101: 5, 200: 90}
user_index = VectorIndex.build(np.array(list(USERS)), np.stack([unit(a) for a in USERS.values()]))
item_index = VectorIndex.build(np.array(list(ITEMS)), np.stack([unit(a) for a in ITEMS.values()]))
inter = pd.DataFrame({"user_id": [1, 5, 2], "item_id": [100, 200, 101], "confidence": [1.0, 1.0, 1.0]})


def test_u2u_returns_neighbours_of_seed_without_seed_or_excluded():
    ids, scores = u2u(np.array([1]), user_index, size=2, k_per_seed=3)
    assert ids.tolist() == [2, 3]
    assert scores[0] >= scores[1]
    ids, _ = u2u(np.array([1]), user_index, size=2, k_per_seed=3, exclude=np.array([2]))
    assert ids.tolist() == [3, 4]
    ids, _ = u2u(np.array([999]), user_index)  # unknown seed
    assert ids.size == 0


def test_u2u_sum_rewards_closeness_to_many_seeds():
    ids, _ = u2u(np.array([1, 5]), user_index, size=3, k_per_seed=7, how="sum")
    assert 1 not in ids and 5 not in ids
    assert set(ids[:2]) <= {2, 3, 4, 6}


def test_i2u2u_expands_item_audience():
    ids, _ = i2u2u(np.array([200]), inter, user_index, size=2, k_per_seed=3)
    assert ids.tolist() == [4, 6] or ids.tolist() == [6, 4]  # 4 and 6 are equidistant from 5
    assert 5 not in ids  # already converted


def test_i2i2u_goes_through_similar_items():
    ids, scores = i2i2u(np.array([100]), inter, item_index, size=5, k_items=1)
    # item 100 → most similar other item 101 → its user 2; user 1 converted on 100 is excluded.
    assert ids.tolist() == [2]
    assert scores[0] > 0.99
