"""Vector contract and the Faiss wrapper (recall against exact search)."""

import numpy as np
import pyarrow as pa
import pytest

from assets.embeddings.vectors import VectorMeta, l2_normalize, table_to_vectors, vectors_to_table
from assets.indexes.faiss_index import VectorIndex, choose_index_type, exact_neighbors, measure_recall


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
    idx.save(tmp_path / "i")
    back = VectorIndex.load(tmp_path / "i")
    np.testing.assert_array_equal(back.search(x[:5], 3)[0], got)
    np.testing.assert_allclose(back.reconstruct(ids[[3, 1]]), x[[3, 1]], atol=1e-6)


def test_ivf_recall_on_clustered_vectors():
    x = clustered(20_000, 32, centers=100)
    idx = VectorIndex.build(np.arange(len(x)), x, index_type="IVF256,Flat", nprobe=16)
    r = measure_recall(idx, x, k=10, sample=300)
    assert r["recall@10"] > 0.9
    low = VectorIndex.build(np.arange(len(x)), x, index_type="IVF256,Flat", nprobe=1)
    assert measure_recall(low, x, k=10, sample=300)["recall@10"] < r["recall@10"]  # the knob matters


def test_auto_choice_and_bad_input():
    assert choose_index_type(1000) == "Flat"
    assert choose_index_type(1_000_000).startswith("IVF") and choose_index_type(1_000_000).endswith(",Flat")
    assert choose_index_type(5_000_000).endswith("SQ8")
    with pytest.raises(ValueError):
        VectorIndex.build(np.arange(3), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="zero vectors"):
        VectorIndex.build(np.arange(0), np.zeros((0, 4), np.float32))
    idx = VectorIndex.build(np.arange(3), np.eye(3, dtype=np.float32))
    ids, _ = idx.search(np.eye(3, dtype=np.float32)[:1], 10)
    assert ids.shape == (1, 3)  # k is capped at the index size
