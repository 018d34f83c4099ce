"""Ranking metrics reproduce Microsoft Recommenders' and pytrec_eval's published values."""

import json

import numpy as np
import pandas as pd
import pytest

from assets.evaluation.metrics import (
    catalog_coverage,
    frames_to_arrays,
    hit_matrix,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    ndcg_graded,
    precision_at_k,
    r_precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from tests.conftest import shared_dataset


@pytest.fixture(scope="module")
def reference():
    return json.loads(
        (shared_dataset("metric-reference") / "ranking_metric_expected_values.json").read_text()
    )


def _frames(ref, which="pred"):
    f = ref["recommenders"]["fixtures"]
    truth = pd.DataFrame(
        {
            "user_id": f["rating_true"]["userID"],
            "item_id": f["rating_true"]["itemID"],
            "rating": f["rating_true"]["rating"],
        }
    )
    if which == "pred":
        pred = pd.DataFrame(
            {
                "user_id": f["rating_pred"]["userID"],
                "item_id": f["rating_pred"]["itemID"],
                "prediction": f["rating_pred"]["prediction"],
            }
        )
    elif which == "true":
        pred = truth.rename(columns={"rating": "prediction"})
    else:  # nohit
        pred = pd.DataFrame(
            {
                "user_id": f["rating_pred"]["userID"],
                "item_id": 100,
                "prediction": f["rating_pred"]["prediction"],
            }
        )
    return truth, pred


def _hits(truth, pred, k):
    rec, indptr, indices = frames_to_arrays(truth, pred, k)
    return hit_matrix(rec, indptr, indices), np.diff(indptr)


def test_recommenders_reference_values(reference):
    truth, pred = _frames(reference)
    h, n = _hits(truth, pred, 10)
    rel = 1e-4
    assert precision_at_k(h, 10) == pytest.approx(0.26666, rel=rel)
    assert recall_at_k(h, n, 10) == pytest.approx(0.37777, rel=rel)
    assert map_at_k(h, n, 10) == pytest.approx(0.23613, rel=rel)
    assert map_at_k(h, n, 10, full=True) == pytest.approx(0.23613, rel=rel)
    assert ndcg_at_k(h, n, 10) == pytest.approx(0.38172, rel=rel)
    for k, v in ((3, 0.21111), (5, 0.24444), (10, 0.37777)):
        hk, nk = _hits(truth, pred, k)
        assert r_precision_at_k(hk, nk, k) == pytest.approx(v, rel=rel)


def test_truth_as_prediction_and_no_hits(reference):
    truth, pred = _frames(reference, "true")
    h, n = _hits(truth, pred, 10)
    assert precision_at_k(h, 10) == pytest.approx(0.6, rel=1e-4)
    assert recall_at_k(h, n, 10) == pytest.approx(1.0)
    assert map_at_k(h, n, 10) == pytest.approx(1.0)
    assert ndcg_at_k(h, n, 10) == pytest.approx(1.0)
    truth, pred = _frames(reference, "nohit")
    h, n = _hits(truth, pred, 10)
    assert precision_at_k(h, 10) == recall_at_k(h, n, 10) == map_at_k(h, n, 10) == ndcg_at_k(h, n, 10) == 0.0
    assert r_precision_at_k(*_hits(truth, pred, 5), 5) == 0.0


def test_small_precision_cases():
    one = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "prediction": [3, 2, 1]})
    h, _ = _hits(one, one, 3)
    assert precision_at_k(h, 3) == 1.0
    two = pd.DataFrame(
        {"user_id": [1, 1, 1, 2, 2, 2], "item_id": [1, 2, 3, 1, 2, 3], "prediction": [3, 2, 1] * 2}
    )
    h, _ = _hits(two, two, 5)
    assert precision_at_k(h, 5) == pytest.approx(0.6)


def test_wikipedia_graded_ndcg(reference):
    gains = np.array([3, 2, 3, 0, 1, 2, 3, 2])
    assert ndcg_graded(gains[:6], gains, 6, "log2") == pytest.approx(0.785, rel=1e-3)


def test_pytrec_eval_ndcg(reference):
    qrel = reference["pytrec_eval"]["qrel"]["q1"]
    relevant = np.array([1])  # d2 -> item 1 of d1,d2,d3 = 0,1,2
    for case in reference["pytrec_eval"]["expected"]:
        run = case["run_q1"]
        order = sorted(run, key=lambda d: -run[d])
        rec = np.array([[int(d[1:]) - 1 for d in order]])
        h = hit_matrix(rec, np.array([0, 1]), relevant)
        assert ndcg_at_k(h, np.array([1]), 3) == pytest.approx(case["ndcg"], abs=1e-7)
        if "ndcg_cut_1" in case:
            assert ndcg_at_k(h, np.array([1]), 1) == pytest.approx(case["ndcg_cut_1"], abs=1e-7)
    assert sum(qrel.values()) == 1


def test_hit_rate_coverage_and_padding():
    rec = np.array([[5, 6, -1], [7, -1, -1]])
    h = hit_matrix(rec, np.array([0, 1, 2]), np.array([6, 8]))
    assert h.tolist() == [[False, True, False], [False, False, False]]
    assert hit_rate_at_k(h, 3) == 0.5
    assert catalog_coverage(rec, 10) == pytest.approx(0.3)
    m = ranking_metrics(rec, np.array([0, 1, 2]), np.array([6, 8]), 3, n_items=10)
    assert set(m) == {"precision@3", "recall@3", "ndcg@3", "map@3", "hit_rate@3", "coverage@3"}


def test_hand_computed_values_on_a_small_case():
    """Two users, k=3, each value worked out by hand (independent of the reference fixtures)."""
    rec = np.array([[4, 9, 2], [8, 1, -1]])  # user 0 relevant {2, 4, 7}; user 1 relevant {1}
    indptr, indices = np.array([0, 3, 4]), np.array([2, 4, 7, 1])
    h = hit_matrix(rec, indptr, indices)
    n = np.diff(indptr)
    assert h.tolist() == [[True, False, True], [False, True, False]]
    assert precision_at_k(h, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert precision_at_k(h, 1) == pytest.approx(0.5)
    assert recall_at_k(h, n, 3) == pytest.approx((2 / 3 + 1) / 2)
    assert hit_rate_at_k(h, 1) == 0.5 and hit_rate_at_k(h, 2) == 1.0
    # AP@3: user 0 (1/1 + 2/3) / min(3, 3); user 1 (1/2) / min(3, 1).
    assert map_at_k(h, n, 3) == pytest.approx(((1 + 2 / 3) / 3 + 0.5) / 2)
    assert map_at_k(h, n, 2) == pytest.approx((1 / 2 + 0.5) / 2)  # user 0: 1/min(2, 3); user 1: (1/2)/1
    assert map_at_k(h, np.array([4, 2]), 3, full=True) == pytest.approx(((1 + 2 / 3) / 4 + 0.5 / 2) / 2)
    d = 1 / np.log2([2, 3, 4])
    assert ndcg_at_k(h, n, 3) == pytest.approx(((d[0] + d[2]) / d.sum() + d[1] / d[0]) / 2)
    assert ndcg_at_k(h, n, 1) == pytest.approx(0.5)
    # R-precision: user 0 hits within its first 3 ranks (2) / 3; user 1 within rank 1 (none) / 1.
    assert r_precision_at_k(h, n, 3) == pytest.approx((2 / 3 + 0) / 2)
    assert r_precision_at_k(h, np.array([1, 2]), 3) == pytest.approx((1 / 1 + 1 / 2) / 2)
    m = ranking_metrics(rec, indptr, indices, 3, n_items=20)
    assert m == pytest.approx(
        {
            "precision@3": 0.5,
            "recall@3": 5 / 6,
            "ndcg@3": ndcg_at_k(h, n, 3),
            "map@3": map_at_k(h, n, 3),
            "hit_rate@3": 1.0,
            "coverage@3": 5 / 20,
        }
    )
    assert "coverage@3" not in ranking_metrics(rec, indptr, indices, 3)


def test_empty_inputs_and_users_without_relevant_items():
    empty = np.zeros((0, 3), bool)
    none = np.array([], np.int64)
    for f in (
        lambda: precision_at_k(empty, 3),
        lambda: recall_at_k(empty, none, 3),
        lambda: hit_rate_at_k(empty, 3),
        lambda: map_at_k(empty, none, 3),
        lambda: ndcg_at_k(empty, none, 3),
        lambda: r_precision_at_k(empty, none, 3),
    ):
        assert f() == 0.0
    no_users = hit_matrix(np.zeros((0, 4), np.int64), np.array([0]), none)
    assert no_users.shape == (0, 4) and no_users.dtype == bool
    no_slots = hit_matrix(np.zeros((2, 0), np.int64), np.array([0, 1, 1]), np.array([4]))  # k = 0
    assert no_slots.shape == (2, 0) and no_slots.dtype == bool
    h = hit_matrix(np.array([[3, -1]]), np.array([0, 0]), none)  # a user with nothing relevant
    assert h.tolist() == [[False, False]]
    assert recall_at_k(h, np.array([0]), 2) == 0.0 and ndcg_at_k(h, np.array([0]), 2) == 0.0
    assert map_at_k(h, np.array([0]), 2) == 0.0 and r_precision_at_k(h, np.array([0]), 2) == 0.0
    assert catalog_coverage(np.array([[-1, -1]]), 5) == 0.0 and catalog_coverage(np.array([[1, 2]]), 0) == 0.0
    # -1 padding never matches an item id of -1 - span (the offset trick keeps users apart).
    assert hit_matrix(np.array([[0], [0]]), np.array([0, 1, 1]), np.array([0])).tolist() == [[True], [False]]
    # Many more users than item ids: every user's keys stay in a range of their own. User 0 holds
    # item 1; users 1-9 recommend items 0-2 and hold nothing, so nothing but user 0's item 1 is a hit.
    rec = np.array([[1, 0, 2]] + [[0, 1, 2]] * 9)
    indptr = np.array([0] + [1] * 10)
    assert hit_matrix(rec, indptr, np.array([1])).tolist() == [[True, False, False]] + [[False] * 3] * 9


def test_graded_dcg_discounts_and_the_ideal_over_all_gains():
    g = np.array([3.0, 0.0, 1.0])
    assert ndcg_graded(g, g, 3, "log2") == pytest.approx((3 + 1 / 2) / (3 + 1 / np.log2(3)))
    assert ndcg_graded(g, g, 3, "ln") == pytest.approx(
        (3 / np.log(2) + 1 / np.log(4)) / (3 / np.log(2) + 1 / np.log(3))
    )
    assert ndcg_graded(g[:2], np.array([3.0, 2.0, 1.0]), 2) == pytest.approx(3 / (3 + 2 / np.log2(3)))
    assert ndcg_graded(np.zeros(3), np.zeros(3), 3) == 0.0


def test_frames_to_arrays_names_cut_and_order():
    truth = pd.DataFrame({"u": [2, 2, 1, 3], "i": [20, 21, 10, 30]})
    pred = pd.DataFrame(
        {"u": [1, 1, 1, 2, 2, 4], "i": [11, 10, 12, 21, 22, 40], "s": [0.5, 0.9, 0.1, 0.3, 0.3, 1.0]}
    )
    rec, indptr, indices = frames_to_arrays(truth, pred, 2, user="u", item="i", score="s")
    assert rec.tolist() == [
        [10, 11],
        [21, 22],
    ]  # users 1 and 2 only (3 has no prediction, 4 no truth); ties stable
    assert indptr.tolist() == [0, 1, 3] and indices.tolist() == [10, 20, 21] and indices.dtype == np.int64
    rec3, _, _ = frames_to_arrays(truth, pred, 4, user="u", item="i", score="s")
    assert rec3.tolist() == [[10, 11, 12, -1], [21, 22, -1, -1]]


def test_cuts_at_k_item_zero_and_the_dcg_itself():
    """Survivors of the mutation run: lists longer than k, item id 0, small gains, the raw DCG."""
    from assets.evaluation.metrics import dcg_graded

    rec = np.array([[7, 0, 3, 5]])  # relevant {0, 5}: hits at ranks 2 and 4
    m = ranking_metrics(rec, np.array([0, 2]), np.array([0, 5]), 2, n_items=8)
    assert m["recall@2"] == 0.5 and m["hit_rate@2"] == 1.0 and m["precision@2"] == 0.5
    assert (
        ranking_metrics(rec, np.array([0, 1]), np.array([5]), 2)["hit_rate@2"] == 0.0
    )  # the hit is at rank 4
    assert m["coverage@2"] == pytest.approx(2 / 8)  # items 7 and 0: id 0 is an item like any other
    assert catalog_coverage(np.array([[0, -1]]), 4) == 0.25
    g = np.array([3, 2, 1])
    assert dcg_graded(g, 2, "log2") == pytest.approx(3 / 1 + 2 / np.log2(3))
    assert dcg_graded(g, 2, "ln") == pytest.approx(3 / np.log(2) + 2 / np.log(3))
    assert dcg_graded(g, 5) == pytest.approx(3 + 2 / np.log2(3) + 1 / 2)
    assert ndcg_graded(np.array([0.0, 0.5, 0.4]), np.array([0.5, 0.4]), 2) == pytest.approx(
        (0.5 / np.log2(3)) / (0.5 + 0.4 / np.log2(3))
    )  # an ideal DCG below 1 is still a DCG
    assert ndcg_graded(np.array([0.0, 0.0, 3.0]), np.array([3.0]), 2) == 0.0  # the gain past k does not count
