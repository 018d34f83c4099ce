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


def cos(a, b):
    return float(np.cos(np.deg2rad(a - b)))


def test_u2u_scores_are_the_aggregated_similarities():
    """Exact scores: seeds 1 (0°) and 5 (90°), every user fetched; sum, max and mean of cosines."""
    import pytest

    for how, agg in (("sum", sum), ("max", max), ("mean", lambda v: sum(v) / len(v))):
        ids, scores = u2u(np.array([1, 5]), user_index, size=10, k_per_seed=7, how=how)
        expect = {u: agg([cos(USERS[u], USERS[s]) for s in (1, 5)]) for u in USERS if u not in (1, 5)}
        order = sorted(expect, key=lambda u: (-round(expect[u], 5), u))
        assert ids.tolist() == order and ids.dtype == np.int64 and scores.dtype == np.float32, how
        assert scores.tolist() == pytest.approx([expect[u] for u in order], abs=1e-5), how
    # k_per_seed limits the neighbours of each seed (plus the seed itself), and size cuts the result.
    ids, _ = u2u(np.array([1]), user_index, size=10, k_per_seed=2)
    assert ids.tolist() == [2, 3]
    assert u2u(np.array([1, 5]), user_index, size=2, k_per_seed=7)[0].size == 2
    with pytest.raises(ValueError, match=r"unknown aggregation 'median' \(sum, max, mean\)"):
        u2u(np.array([1]), user_index, how="median")


def test_ties_are_broken_by_the_lower_id():
    tie_index = VectorIndex.build(np.array([1, 9, 4, 7]), np.stack([unit(0), unit(10), unit(-10), unit(90)]))
    ids, scores = u2u(np.array([1]), tie_index, size=3, k_per_seed=3)
    assert ids.tolist() == [4, 9, 7] and scores[0] == scores[1]


def test_i2u2u_caps_seed_users_by_engagement_and_excludes_the_audience():
    # Item 100's audience: users 1 (confidence 5) and 7 (1). Capped at one seed user: the most engaged, 1.
    inter2 = pd.DataFrame({"user_id": [1, 7, 1], "item_id": [100, 100, 101], "confidence": [3.0, 1.0, 2.0]})
    ids, scores = i2u2u(np.array([100, 101]), inter2, user_index, size=3, k_per_seed=7, max_seed_users=1)
    assert 1 not in ids and 7 not in ids  # the audience is already converted
    assert ids.tolist() == [2, 3, 4]  # neighbours of user 1 (0°), not of user 7 (180°)
    ids, _ = i2u2u(np.array([100]), inter2, user_index, size=3, k_per_seed=7, max_seed_users=2)
    assert 1 not in ids and 7 not in ids and set(ids.tolist()) <= {2, 3, 4, 5, 6, 8}
    ids, _ = i2u2u(
        np.array([100]), inter2, user_index, size=3, k_per_seed=7, max_seed_users=1, exclude=np.array([2])
    )
    assert ids.tolist() == [3, 4, 5]


def test_i2i2u_weights_users_by_their_items_best_similarity_to_a_seed():
    import pytest

    # Seed 100 (0°): its neighbours 101 (5°) and 200 (60°). Users of 101: 2 and 3; of 200: 5 (twice) and 3.
    items = VectorIndex.build(np.array([100, 101, 200]), np.stack([unit(0), unit(5), unit(60)]))
    inter3 = pd.DataFrame(
        {"user_id": [2, 3, 5, 5, 3, 1], "item_id": [101, 101, 200, 200, 200, 100], "confidence": 1.0}
    )
    item_index = items
    ids, scores = i2i2u(np.array([100]), inter3, item_index, size=10, k_items=2)
    w101, w200 = cos(5, 0), cos(60, 0)
    assert ids.tolist() == [3, 2, 5]  # user 3 has both items; user 1 used the seed: converted
    assert scores.tolist() == pytest.approx([w101 + w200, w101, w200], abs=1e-5)
    assert i2i2u(np.array([100]), inter3, item_index, size=10, k_items=1)[0].tolist() == [2, 3]  # 101 only
    assert i2i2u(np.array([100]), inter3, item_index, size=10, k_items=2, exclude=np.array([3]))[
        0
    ].tolist() == [2, 5]
    assert i2i2u(np.array([999]), inter3, item_index)[0].size == 0


def test_empty_results_user_zero_and_what_i2u2u_passes_on():
    """Survivors of the mutation run: empty answers' types, user id 0, and I2U2U's k and aggregation."""
    import pytest

    for ids, scores in (i2i2u(np.array([999]), inter, item_index), u2u(np.array([999]), user_index)):
        assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.size == scores.size == 0
    zero_index = VectorIndex.build(np.array([0, 1, 2, 3]), np.stack([unit(3), unit(0), unit(90), unit(6)]))
    zi = pd.DataFrame({"user_id": [1], "item_id": [100], "confidence": [1.0]})
    assert (
        0 in i2u2u(np.array([100]), zi, zero_index, size=3, k_per_seed=3)[0].tolist()
    )  # 0 is a user, not padding
    # k_per_seed reaches u2u: one neighbour per seed user.
    assert i2u2u(np.array([100]), zi, zero_index, size=3, k_per_seed=1)[0].tolist() == [0]
    # how reaches u2u: seeds 1 (0°) and 2 (90°); user 3 (6°) sums to cos 6° + cos 84°, maxes to cos 6°.
    two = pd.DataFrame({"user_id": [1, 2], "item_id": [100, 100], "confidence": [1.0, 1.0]})
    s_sum = dict(zip(*i2u2u(np.array([100]), two, zero_index, size=3, k_per_seed=3, how="sum")))
    s_max = dict(zip(*i2u2u(np.array([100]), two, zero_index, size=3, k_per_seed=3, how="max")))
    assert s_sum[3] == pytest.approx(cos(6, 0) + cos(6, 90), abs=1e-5) and s_max[3] == pytest.approx(
        cos(6, 0), abs=1e-5
    )
    # Tied engagement under the cap: the lower user id is kept (a stable order).
    tie = pd.DataFrame({"user_id": [2, 1], "item_id": [100, 100], "confidence": [1.0, 1.0]})
    assert i2u2u(np.array([100]), tie, zero_index, size=1, k_per_seed=3, max_seed_users=1)[0].tolist() == [0]


def test_the_documented_defaults_size_and_neighbours_per_seed():
    """Defaults are part of the contract: 1000 users, 100 neighbours per seed (U2U), 50 (I2U2U), 20
    similar items (I2I2U). Each is checked against the explicit value and a neighbouring one."""
    rng = np.random.default_rng(0)
    n = 1500
    vecs = rng.normal(size=(n, 8)).astype(np.float32)
    big = VectorIndex.build(np.arange(n), vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    one = np.array([0])
    assert u2u(one, big)[0].size == 100 and np.array_equal(u2u(one, big)[0], u2u(one, big, k_per_seed=100)[0])
    many = np.arange(30)
    assert u2u(many, big)[0].size == 1000 and u2u(many, big, size=1001)[0].size == 1001
    inter_one = pd.DataFrame({"user_id": [0], "item_id": [7], "confidence": [1.0]})
    assert i2u2u(np.array([7]), inter_one, big)[0].size == 50
    # I2I2U: 40 items around the seed, each with one user of its own.
    ang = np.linspace(0, 80, 41)
    items = VectorIndex.build(np.arange(100, 141), np.stack([unit(a) for a in ang]))
    users_of = pd.DataFrame({"user_id": np.arange(41), "item_id": np.arange(100, 141), "confidence": 1.0})
    ids = i2i2u(np.array([100]), users_of, items)[0]
    assert np.array_equal(ids, i2i2u(np.array([100]), users_of, items, k_items=20)[0])
    assert not np.array_equal(ids, i2i2u(np.array([100]), users_of, items, k_items=21)[0])
    assert i2i2u(np.array([100]), users_of, items, k_items=40, size=5)[0].tolist() == [1, 2, 3, 4, 5]


def test_user_zero_is_kept_when_nothing_is_excluded():
    zero_index = VectorIndex.build(np.array([0, 1, 2]), np.stack([unit(3), unit(0), unit(90)]))
    assert u2u(np.array([1]), zero_index, size=2)[0].tolist() == [0, 2]
    items = VectorIndex.build(np.array([100, 101]), np.stack([unit(0), unit(4)]))
    zi = pd.DataFrame({"user_id": [0, 5], "item_id": [101, 100], "confidence": 1.0})
    assert i2i2u(np.array([100]), zi, items, k_items=2)[0].tolist() == [0]


def test_i2u2u_keeps_the_lowest_ids_among_many_tied_seed_users():
    """40 users: 20 engaged twice as much as the others, all tied among themselves, capped at 10.
    The seeds are the 10 lowest ids of the engaged (a stable sort; quicksort picks others)."""
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(200, 8)).astype(np.float32)
    index = VectorIndex.build(np.arange(200), vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    conf = np.r_[np.full(20, 2.0), np.ones(20)][rng.permutation(40)]
    tied = pd.DataFrame({"user_id": np.arange(40), "item_id": 9, "confidence": conf})
    got = i2u2u(np.array([9]), tied, index, size=30, k_per_seed=10, max_seed_users=10)
    want = u2u(np.flatnonzero(conf == 2.0)[:10], index, size=30, k_per_seed=10, exclude=np.arange(40))
    np.testing.assert_array_equal(got[0], want[0])


def test_i2u2u_and_i2i2u_return_1000_users_by_default():
    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(1500, 8)).astype(np.float32)
    big = VectorIndex.build(np.arange(1500), vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    one = pd.DataFrame({"user_id": [0], "item_id": [7], "confidence": [1.0]})
    assert i2u2u(np.array([7]), one, big, k_per_seed=1400)[0].size == 1000
    items = VectorIndex.build(np.arange(100, 121), np.stack([unit(a) for a in np.linspace(0, 40, 21)]))
    users = pd.DataFrame(
        {"user_id": np.arange(1260), "item_id": np.repeat(np.arange(100, 121), 60), "confidence": 1.0}
    )
    ids = i2i2u(np.array([100]), users, items)[0]
    assert ids.size == 1000 and not set(ids.tolist()) & set(range(60))  # the seed's own 60 users are excluded
