"""faiss_tuning in detail: the plan for each size and budget (names, reasons, sizes, boundaries),
exact neighbours by metric, the tuner's search path and result, and measure_recall's figures."""

import logging
import re

import faiss
import numpy as np
import pytest

import assets.indexes.faiss_tuning as ft
from assets.indexes.faiss_index import VectorIndex
from assets.indexes.faiss_tuning import (
    IndexPlan,
    exact_neighbors,
    measure_recall,
    plan_index,
    recall_at_k,
    search_knob,
    tune_search,
)


def _data(n=3000, dim=16, seed=0, unit=False):
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32) * np.linspace(0.5, 2.0, n)[
        :, None
    ].astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True) if unit else x


class FakeClock:
    """``time.perf_counter`` that advances by fixed steps, so reported seconds are exact."""

    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def test_each_plan_names_its_reason_training_size_and_bytes():
    n, d = 100_000, 64
    assert plan_index(n, d) == IndexPlan(
        "HNSW32", "graph: 100,000 vectors <= 300,000 of dim 64 >= 32", 0, n * d * 4 + n * 32 * 2 * 4
    )
    n, d = 1_000_000, 32
    assert plan_index(n, d) == IndexPlan(
        "IVF1024,Flat", "inverted lists: raw vectors (122 MiB) fit the budget", 65_536, n * d * 4 + n * 8
    )
    budget = n * d + n * 8  # SQ8 fits exactly; the raw vectors do not
    assert plan_index(n, d, budget) == IndexPlan(
        "IVF1024,SQ8", "8-bit scalar quantisation: raw vectors exceed the budget", 65_536, budget
    )
    pq = plan_index(n, d, budget - 1)
    assert pq == IndexPlan(
        "IVF1024,PQ16", "product quantisation (16 bytes per vector): SQ8 exceeds the budget", 65_536, n * 24
    )


def test_boundaries_are_inclusive():
    n, d = 100_000, 64
    assert plan_index(n, d, n * d * 4).factory == "HNSW32"  # the raw vectors fill the budget exactly
    assert plan_index(n, d, n * d * 4 - 1).factory.startswith("IVF")
    n, d = 1_000_000, 32
    assert plan_index(n, d, n * (d + 8)).factory == "IVF1024,SQ8"  # SQ8 fills it exactly
    assert plan_index(n, d, n * (16 + 8)).factory == "IVF1024,PQ16"  # PQ16 fills it exactly
    assert plan_index(n, d, n * (16 + 8) - 1).factory == "IVF1024,PQ8"


@pytest.mark.parametrize(
    "dim, m", [(48, 16), (130, 2), (66, 2), (10, 2), (9, 1), (128, 64), (96, 32), (40, 8), (12, 4)]
)
def test_pq_takes_the_largest_code_size_that_divides_the_dimension(dim, m):
    n = 1_000_000
    plan = plan_index(
        n, dim, memory_budget_bytes=n * (m + 8)
    )  # too small for SQ8 (dim + 8 bytes) when dim > m
    assert plan.factory.endswith(f",PQ{m}") and plan.bytes_estimate == n * (m + 8)


def test_exact_neighbors_by_metric_and_dtype():
    x = _data(500, 8)  # not unit length: inner product and L2 disagree
    q = x[:20]
    ip = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :5]
    l2 = np.argsort(((q[:, None, :] - x[None]) ** 2).sum(-1), axis=1, kind="stable")[:, :5]
    assert not np.array_equal(ip, l2)  # the premise
    np.testing.assert_array_equal(exact_neighbors(x, q, 5), ip)  # inner product by default
    np.testing.assert_array_equal(exact_neighbors(x, q, 5, "ip"), ip)
    np.testing.assert_array_equal(exact_neighbors(x, q, 5, "l2"), l2)
    np.testing.assert_array_equal(
        exact_neighbors(x.astype(np.float64), q.astype(np.float64), 5), ip
    )  # float64 given


def test_recall_counts_id_zero_and_ignores_padding():
    assert recall_at_k(np.array([[0, 1]]), np.array([[0, 1]])) == 1.0
    assert recall_at_k(np.array([[1, -1]]), np.array([[0, 1]])) == 0.5
    assert recall_at_k(np.array([[0, 5]]), np.array([[0, -1]])) == 0.5  # a padded truth slot is never found
    assert recall_at_k(np.zeros((0, 3), int), np.zeros((0, 3), int)) == 1.0


def _ivf(x):
    index = faiss.index_factory(x.shape[1], "IVF64,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    return index


def _recalls(index, x, queries, k):
    truth = exact_neighbors(x, queries, k)
    out = {}
    for v in range(1, 9):
        faiss.extract_index_ivf(index).nprobe = v
        out[v] = recall_at_k(index.search(queries, k)[1], truth)
    return out


@pytest.mark.parametrize("smallest", [1, 3, 4, 5, 6, 7])
def test_the_tuner_finds_the_smallest_passing_nprobe_by_doubling_then_bisection(
    smallest, monkeypatch, caplog
):
    x = _data()
    index = _ivf(x)
    queries = x[np.sort(np.random.default_rng(0).choice(len(x), 1000, replace=False))]  # the default sample
    rec = _recalls(index, x, queries, 10)
    assert all(rec[v] < rec[v + 1] for v in range(1, 8))  # the premise: recall grows strictly here
    target = rec[smallest]
    monkeypatch.setattr(ft.time, "perf_counter", FakeClock(100.0, 101.25, 102.3456))
    with caplog.at_level(logging.INFO, logger=ft.__name__):
        r = tune_search(index, x, target=target)  # k=10, sample=1000, seed=0, metric="ip" by default
    assert r["value"] == smallest and r["recall"] == rec[smallest] and r["param"] == "nprobe"
    tried = {
        1: [1],
        3: [1, 2, 3, 4],
        4: [1, 2, 3, 4],
        5: [1, 2, 4, 5, 6, 8],
        6: [1, 2, 4, 5, 6, 8],
        7: [1, 2, 4, 6, 7, 8],
    }[smallest]
    assert [v for v, _ in r["curve"]] == tried and all(rec[v] == got for v, got in r["curve"])
    assert search_knob(index) == ("nprobe", smallest)  # the index is left at the chosen value
    assert (
        r["target"] == target and r["n_queries"] == 1000 and r["tune_seconds"] == 2.346 and r["previous"] == 8
    )
    msg = [m.getMessage() for m in caplog.records if m.name == ft.__name__]
    assert msg == [f"tuned nprobe={smallest}: recall@10 {rec[smallest]:.4f} (target {target:.2f}) in 1.2s"]


def test_the_tuner_uses_its_documented_defaults_and_a_seeded_sample():
    x = _data(1500)
    a = tune_search(_ivf(x), x, target=0.9)
    b = tune_search(_ivf(x), x, k=10, target=0.9, sample=1000, metric="ip", seed=0)
    q = x[np.sort(np.random.default_rng(0).choice(len(x), 1000, replace=False))]
    c = tune_search(_ivf(x), x, target=0.9, queries=q)
    assert a["curve"] == b["curve"] == c["curve"] and a["value"] == b["value"]
    d = tune_search(_ivf(x), x, target=0.9, seed=1)
    assert d["curve"] != a["curve"]  # another seed, other queries
    e = tune_search(_ivf(x), x, k=11, target=0.9)
    assert e["curve"] != a["curve"]


def test_the_tuner_measures_recall_in_the_index_metric():
    x = _data(2000, 8)  # not unit length: L2 and inner-product neighbours differ
    index = faiss.index_factory(8, "IVF32,Flat", faiss.METRIC_L2)
    index.train(x)
    index.add(x)
    q = x[:300]
    truth = exact_neighbors(x, q, 10, "l2")
    want = []
    for v in (1, 2):
        faiss.extract_index_ivf(index).nprobe = v
        want.append(recall_at_k(index.search(q, 10)[1], truth))
    r = tune_search(index, x, k=10, target=1.01, metric="l2", queries=q)
    assert [got for _, got in r["curve"][:2]] == want


def test_an_unreachable_target_takes_the_most_thorough_setting():
    x = _data(1200, 32)
    hnsw = faiss.index_factory(32, "HNSW8", faiss.METRIC_INNER_PRODUCT)
    hnsw.add(x)
    r = tune_search(hnsw, x, k=10, target=1.01, sample=50)
    assert r["param"] == "efSearch" and r["value"] == 4096 and r["curve"][0][0] == 10
    assert search_knob(hnsw) == ("efSearch", 4096)
    ivf = _ivf(x)
    r = tune_search(ivf, x, k=10, target=1.01, sample=50)
    assert r["value"] == 64 and [v for v, _ in r["curve"]] == [1, 2, 4, 8, 16, 32, 64]


def test_an_exact_index_needs_no_tuning(monkeypatch):
    x = _data(300)
    flat = faiss.IndexFlatIP(16)
    flat.add(x)
    monkeypatch.setattr(ft.time, "perf_counter", FakeClock(5.0, 5.12345))
    assert tune_search(flat, x, target=0.95, sample=40) == {
        "param": None,
        "value": None,
        "recall": 1.0,
        "curve": [],
        "target": 0.95,
        "n_queries": 40,
        "tune_seconds": 0.123,
    }
    monkeypatch.undo()
    assert tune_search(flat, x)["target"] == 0.99  # the default target


def test_measure_recall_reports_recall_qps_and_queries_with_its_defaults(monkeypatch):
    x = _data(1500, 16)
    idx = VectorIndex.build(np.arange(1500) * 3, x, index_type="IVF32,Flat", nprobe=2)
    rng = np.random.default_rng(0)
    q = x[np.sort(rng.choice(1500, 1000, replace=False))]
    truth = idx.ids[exact_neighbors(x, q, 10, "ip")]
    want = recall_at_k(idx.search(q, 10)[0], truth)
    monkeypatch.setattr(ft.time, "perf_counter", FakeClock(10.0, 10.5))
    assert measure_recall(idx, x) == {"recall@10": want, "qps": 2000.0, "n_queries": 1000}
    monkeypatch.undo()
    assert measure_recall(idx, x, seed=1)["recall@10"] != want
    twenty = measure_recall(idx, x, k=20, sample=200)
    assert set(twenty) == {"recall@20", "qps", "n_queries"} and twenty["n_queries"] == 200
    q20 = x[np.sort(np.random.default_rng(0).choice(1500, 200, replace=False))]
    truth20 = idx.ids[exact_neighbors(x, q20, 20, "ip")]
    assert twenty["recall@20"] == recall_at_k(idx.search(q20, 20)[0], truth20)
    assert twenty["recall@20"] != recall_at_k(
        idx.search(q20, 10)[0], truth20
    )  # the premise: k reaches the search
    l2 = VectorIndex.build(np.arange(1500), x, metric="l2", index_type="IVF32,Flat", nprobe=32)
    assert measure_recall(l2, x, sample=100)["recall@10"] == 1.0  # exact (every list) against L2 truth
    assert re.fullmatch(r"recall@\d+", next(iter(measure_recall(l2, x, sample=10))))
