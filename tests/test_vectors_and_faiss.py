"""Vector contract and the Faiss wrapper (recall against exact search)."""

import numpy as np
import pyarrow as pa
import pytest

from assets.embeddings.vectors import VectorMeta, l2_normalize, table_to_vectors, vectors_to_table
from assets.indexes.faiss_index import VectorIndex, exact_neighbors, measure_recall
from assets.indexes.faiss_tuning import plan_index, recall_at_k, tune_search


def clustered(n, d, centers=50, seed=0, noise=0.15):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    x = c[rng.integers(0, centers, n)] + noise * rng.normal(size=(n, d))
    return l2_normalize(x.astype(np.float32))


def test_vector_contract_roundtrip():
    ids = np.array([10, 20, 30])
    v = np.array([[3, 4], [0, 0], [1, 0]], np.float32)
    t = vectors_to_table(ids, v, VectorMeta(model_name="m", model_version="7"))
    assert t.schema.field("vector").type == pa.list_(pa.float32(), 2)
    assert t.schema.field("id").type == pa.int64()
    i2, v2, md = table_to_vectors(t)
    np.testing.assert_array_equal(i2, ids)
    np.testing.assert_allclose(v2[0], [0.6, 0.8])
    assert not np.isnan(v2).any()  # a zero vector stays zero
    assert md["model_version"] == "7" and md["dim"] == 2 and md["metric"] == "ip"
    with pytest.raises(ValueError, match="NaN"):
        vectors_to_table(ids, np.full((3, 2), np.nan, np.float32), VectorMeta())
    with pytest.raises(ValueError, match="does not match"):
        vectors_to_table(ids[:2], v, VectorMeta())


def test_exact_index_matches_brute_force_and_maps_ids(tmp_path):
    x = clustered(500, 16)
    ids = np.arange(1000, 1500, dtype=np.int64)
    idx = VectorIndex.build(ids, x)
    assert idx.params["index_type"] == "Flat"
    got, scores = idx.search(x[:5], 3)
    assert got.shape == scores.shape == (5, 3)
    assert (got[:, 0] == ids[:5]).all()  # a vector's nearest neighbour under IP on unit vectors is itself
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    np.testing.assert_array_equal(got, ids[exact_neighbors(x, x[:5], 3)])
    # And against numpy, not Faiss: the exact neighbours and scores by a plain matrix product.
    sims = x[:5] @ x.T
    np.testing.assert_array_equal(got, ids[np.argsort(-sims, axis=1, kind="stable")[:, :3]])
    np.testing.assert_allclose(scores, np.sort(sims, axis=1)[:, ::-1][:, :3], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        exact_neighbors(x, x[:5], 3, "l2"),
        np.argsort(((x[:5, None, :] - x[None]) ** 2).sum(-1), axis=1, kind="stable")[:, :3],
    )
    idx.save(tmp_path / "i")
    back = VectorIndex.load(tmp_path / "i")
    np.testing.assert_array_equal(back.search(x[:5], 3)[0], got)
    np.testing.assert_allclose(back.reconstruct(ids[[3, 1]]), x[[3, 1]], atol=1e-6)


def test_ivf_recall_on_clustered_vectors():
    x = clustered(20_000, 32, centers=100)
    idx = VectorIndex.build(np.arange(len(x)), x, index_type="IVF256,Flat", nprobe=16)
    r = measure_recall(idx, np.arange(len(x)), x, k=10, sample=300)
    assert r["recall@10"] > 0.9
    low = VectorIndex.build(np.arange(len(x)), x, index_type="IVF256,Flat", nprobe=1)
    assert (
        measure_recall(low, np.arange(len(x)), x, k=10, sample=300)["recall@10"] < r["recall@10"]
    )  # the knob matters


def test_auto_choice_and_bad_input():
    assert plan_index(1000, 64).factory == "Flat"
    assert plan_index(200_000, 64).factory == "HNSW32"
    assert plan_index(200_000, 10).factory.startswith("IVF")  # low dimension: lists are cheap to scan
    assert (
        plan_index(4_474_857, 10).factory == "IVF2048,Flat"
        and plan_index(4_474_857, 10).train_size == 131_072
    )
    assert plan_index(5_000_000, 64, memory_budget_bytes=1 << 30).factory.endswith(",SQ8")
    assert ",PQ" in plan_index(5_000_000, 64, memory_budget_bytes=200 << 20).factory
    with pytest.raises(ValueError):
        VectorIndex.build(np.arange(3), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="zero vectors"):
        VectorIndex.build(np.arange(0), np.zeros((0, 4), np.float32))
    idx = VectorIndex.build(np.arange(3), np.eye(3, dtype=np.float32))
    ids, _ = idx.search(np.eye(3, dtype=np.float32)[:1], 10)
    assert ids.shape == (1, 3)  # k is capped at the index size


def test_tuner_reaches_the_target_with_the_smallest_parameter():
    x = clustered(30_000, 16, centers=200, noise=0.3)
    idx = VectorIndex.build(
        np.arange(len(x)), x, index_type="IVF128,Flat", target_recall=0.95, recall_k=10, tune_sample=300
    )
    p = idx.params
    assert p["search_param"] == "nprobe" and p["tuned_recall"] >= p["tuned_recall_lower"] >= 0.95
    lower = dict(p["tune_curve_lower"])
    assert all(r < 0.95 for v, r in lower.items() if v < p["search_value"])  # nothing smaller passed
    assert p["heldout_recall"] >= 0.95  # on held-out rows the tuner never saw
    assert (
        measure_recall(idx, np.arange(len(x)), x, k=10, sample=300, seed=5)["recall@10"] > 0.94
    )  # holds on other queries
    hnsw = VectorIndex.build(np.arange(len(x)), x, index_type="HNSW16", target_recall=0.98, tune_sample=200)
    assert hnsw.params["search_param"] == "efSearch" and hnsw.params["tuned_recall_lower"] >= 0.98
    exact = VectorIndex.build(np.arange(100), x[:100])
    assert exact.params["search_param"] is None and exact.params["tuned_recall"] == 1.0
    fixed = VectorIndex.build(np.arange(len(x)), x, index_type="IVF128,Flat", nprobe=3)
    assert fixed.params["nprobe"] == 3 and faiss_nprobe(fixed) == 3


def faiss_nprobe(idx):
    import faiss

    return faiss.extract_index_ivf(idx.index).nprobe


def test_unreachable_target_takes_the_most_thorough_setting():
    import faiss

    x = clustered(5_000, 8, centers=20)
    index = faiss.index_factory(8, "IVF16,SQ4", faiss.METRIC_INNER_PRODUCT)  # 4-bit codes cap recall below 1
    index.train(x)
    index.add(x)
    res = tune_search(index, x, k=10, target=0.99999, sample=200)
    assert res["value"] == 16 and res["recall"] < 0.99999


def test_recall_at_k_counts_overlap():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(np.array([[3, 2, 9], [4, 5, 6]]), truth) == pytest.approx(5 / 6)


def test_plan_index_boundaries_and_estimates():
    """Every branch at its boundary, with the byte estimate each reports."""
    from assets.indexes.faiss_tuning import EXACT_MAX, HNSW_MAX, HNSW_MIN_DIM, _nlist

    p = plan_index(EXACT_MAX, 16)
    assert (p.factory, p.train_size, p.bytes_estimate) == (
        "Flat",
        0,
        EXACT_MAX * 16 * 4,
    ) and "exact" in p.reason
    assert plan_index(EXACT_MAX + 1, HNSW_MIN_DIM).factory == "HNSW32"
    h = plan_index(HNSW_MAX, HNSW_MIN_DIM)
    assert h.factory == "HNSW32" and h.bytes_estimate == HNSW_MAX * HNSW_MIN_DIM * 4 + HNSW_MAX * 32 * 2 * 4
    assert plan_index(HNSW_MAX + 1, HNSW_MIN_DIM).factory.startswith("IVF")
    assert plan_index(HNSW_MAX, HNSW_MIN_DIM - 1).factory.startswith("IVF")
    n, d = 1_000_000, 16
    raw = n * d * 4
    ivf = plan_index(n, d, memory_budget_bytes=raw + n * 8)  # exactly fits
    assert ivf.factory == "IVF1024,Flat" and ivf.train_size == 64 * 1024 and ivf.bytes_estimate == raw + n * 8
    sq8 = plan_index(n, d, memory_budget_bytes=raw + n * 8 - 1)
    assert sq8.factory == "IVF1024,SQ8" and sq8.bytes_estimate == n * d + n * 8
    pq = plan_index(n, d, memory_budget_bytes=n * d + n * 8 - 1)
    assert pq.factory == "IVF1024,PQ8" and pq.bytes_estimate == n * (8 + 8)  # 16 bytes a vector did not fit
    assert (
        plan_index(n, 12, memory_budget_bytes=1).factory == "IVF1024,PQ1"
    )  # nothing fits: the smallest code
    assert (_nlist(100), _nlist(10**6), _nlist(10**12)) == (64, 1024, 65536)
    assert plan_index(1000, 10).train_size == 0


def test_recall_at_k_counts_overlap_and_ignores_padding():
    truth = np.array([[1, 2, 3], [4, 5, -1]])
    assert recall_at_k(np.array([[3, 9, 1], [5, 4, 7]]), truth) == pytest.approx(4 / 6)
    assert recall_at_k(np.array([[1, 2, 3], [-1, -1, -1]]), truth) == pytest.approx(3 / 6)  # -1 never counts
    assert recall_at_k(np.zeros((0, 3), int), np.zeros((0, 3), int)) == 1.0


def test_search_knobs_and_tuning_with_given_queries():
    import faiss

    from assets.indexes.faiss_tuning import search_knob, set_search_knob

    x = clustered(4_000, 8, centers=40)
    flat = faiss.IndexFlatIP(8)
    assert search_knob(flat) == (None, None)
    set_search_knob(flat, 5)  # no knob: nothing to set, no error
    hnsw = faiss.IndexHNSWFlat(8, 8, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(x)
    set_search_knob(hnsw, 33)
    assert search_knob(hnsw) == ("efSearch", 33)
    queries = clustered(100, 8, centers=40, seed=7)  # not from the index
    res = tune_search(hnsw, x, k=5, target=0.9, queries=queries)
    assert res["param"] == "efSearch" and res["n_queries"] == 100 and res["previous"] == 33
    assert (
        res["value"] >= 5 and res["recall_lower"] >= 0.9 and search_knob(hnsw) == ("efSearch", res["value"])
    )
    assert all(r < 0.9 for v, r in res["curve_lower"] if v < res["value"]) and res["target"] == 0.9
    exact = tune_search(flat, x, k=5, sample=30)
    assert (exact["param"], exact["value"], exact["recall"], exact["curve"], exact["n_queries"]) == (
        None,
        None,
        1.0,
        [],
        30,
    )
    ivf = faiss.index_factory(8, "IVF16,Flat", faiss.METRIC_INNER_PRODUCT)
    ivf.train(x)
    ivf.add(x)
    r = tune_search(ivf, x, k=10, target=1.0, sample=50)
    assert r["value"] <= 16 and r["recall"] == 1.0 and dict(r["curve"])[r["value"]] == 1.0
    assert faiss.extract_index_ivf(ivf).nprobe == r["value"]
