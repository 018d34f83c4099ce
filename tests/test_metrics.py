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
    return json.loads((shared_dataset("metric-reference") / "ranking_metric_expected_values.json").read_text())


def _frames(ref, which="pred"):
    f = ref["recommenders"]["fixtures"]
    truth = pd.DataFrame({"user_id": f["rating_true"]["userID"], "item_id": f["rating_true"]["itemID"],
                          "rating": f["rating_true"]["rating"]})
    if which == "pred":
        pred = pd.DataFrame({"user_id": f["rating_pred"]["userID"], "item_id": f["rating_pred"]["itemID"],
                             "prediction": f["rating_pred"]["prediction"]})
    elif which == "true":
        pred = truth.rename(columns={"rating": "prediction"})
    else:  # nohit
        pred = pd.DataFrame({"user_id": f["rating_pred"]["userID"], "item_id": 100,
                             "prediction": f["rating_pred"]["prediction"]})
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
    two = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "item_id": [1, 2, 3, 1, 2, 3], "prediction": [3, 2, 1] * 2})
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
