"""item2vec pieces and the single-node ALS engine."""

import numpy as np
import pandas as pd
import pytest

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.item2vec import (
    Blocklist,
    Item2VecParams,
    SeenItems,
    random_walks,
    recommend,
    sessionize,
    train_item2vec,
    user_vectors,
)
from assets.evaluation.offline import SplitSpec, split_interactions
from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions


def test_sessions_never_cross_users_or_gaps():
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2],
            "item_id": [10, 11, 12, 13, 14, 15],
            "ts": [0, 10, 5000, 5010, 20, 30],
        }
    )
    s = sessionize(df, gap_seconds=100)
    assert s["items"].tolist() == [[10, 11], [12, 13], [14, 15]]
    assert s["user_id"].tolist() == [1, 1, 2]
    assert sessionize(df, gap_seconds=100, min_len=3).empty
    assert sessionize(df.iloc[:0]).empty
    with pytest.raises(ValueError, match="no click sequences"):
        train_item2vec(sessionize(df.iloc[:0]))


def test_random_walks_follow_cooccurrence_edges():
    walks = random_walks(pd.Series([[1, 2], [2, 3]]), walks_per_item=3, walk_length=5)
    edges = {(1, 2), (2, 1), (2, 3), (3, 2)}
    assert walks and all((a, b) in edges for w in walks for a, b in zip(w, w[1:]))


def test_user_vectors_and_filters_never_nan():
    item_ids = np.array([10, 11, 12])
    vecs = np.eye(3, dtype=np.float32)
    inter = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 11, 12, 99], "ts": [0, 86_400, 0, 0]})
    users, uv = user_vectors(inter, item_ids, vecs, "mean")
    assert users.tolist() == [1, 2]  # user 3 has only an unknown item: no vector, not NaN
    np.testing.assert_allclose(uv[0], [0.5, 0.5, 0])
    _, rec = user_vectors(inter, item_ids, vecs, "mean", half_life_days=1)
    assert rec[0][1] > rec[0][0]  # the more recent item weighs more
    ids, _ = recommend(users, uv, item_ids, vecs, k=3, filters=[SeenItems(inter), Blocklist(np.array([12]))])
    assert ids.tolist() == [[-1, -1, -1], [10, 11, -1]]
    with pytest.raises(ValueError):
        user_vectors(inter, item_ids, vecs, "median")


def test_item2vec_learns_planted_communities():
    df, truth = generate_interactions(SyntheticSpec(n_interactions=20_000, n_communities=4, seed=2))
    s = sessionize(df, gap_seconds=7 * 86_400)
    ids, vecs, _ = train_item2vec(s, Item2VecParams(dim=16, epochs=5, min_count=3))
    assert np.isfinite(vecs).all() and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    # Items mostly used by one community should sit closer to each other than to other communities' items.
    d = df.merge(truth, on="user_id")
    comm = d.groupby("item_id")["community"].agg(lambda x: x.value_counts().index[0]).reindex(ids).to_numpy()
    sim = vecs @ vecs.T
    same = sim[comm[:, None] == comm[None, :]].mean()
    other = sim[comm[:, None] != comm[None, :]].mean()
    assert same > other + 0.1


def test_unknown_engine_is_named():
    train = pd.DataFrame({"user_id": [1], "item_id": [2], "confidence": [1.0]})
    with pytest.raises(ValueError, match="unknown ALS engine 'mahout'"):
        train_als("mahout", train, AlsParams())
    with pytest.raises(ValueError, match="needs a SparkSession"):
        train_als("spark", train, AlsParams())


def test_weighted_reg_solve_is_spark_als_wr_normal_equations():
    """Each row solves (YᵀY + Yᵀ(Cᵤ−I)Y + λ·nᵤ·I) xᵤ = YᵀCᵤpᵤ, as Spark's implicit ALS does."""
    import scipy.sparse as sp

    from assets.embeddings.als_cpu import weighted_reg_solve

    rng = np.random.default_rng(0)
    n_users, n_items, k, reg = 12, 30, 4, 0.3
    rows, cols, vals = [], [], []
    for u in range(n_users):  # counts 1..12, sorted: every row its own run, so the solve is exact
        for i in rng.choice(n_items, u + 1, replace=False):
            rows.append(u), cols.append(i), vals.append(1 + 5 * rng.random())
    c = sp.csr_matrix((np.float32(vals), (rows, cols)), shape=(n_users, n_items))
    y = rng.normal(size=(n_items, k)).astype(np.float32)
    x = np.zeros((n_users, k), np.float32)
    weighted_reg_solve(c, x, y, reg)  # exact (Cholesky)
    x_cg = np.zeros((n_users, k), np.float32)
    weighted_reg_solve(c, x_cg, y, reg, cg_steps=3 * k)  # CG converges to the same solution
    np.testing.assert_allclose(x_cg, x, rtol=1e-3, atol=1e-4)
    for u in range(n_users):
        idx, cu = c[u].indices, c[u].data.astype(np.float64)
        a = y.T.astype(np.float64) @ y + (y[idx].T * (cu - 1)) @ y[idx] + reg * len(idx) * np.eye(k)
        np.testing.assert_allclose(x[u], np.linalg.solve(a, y[idx].T @ cu), rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="sorted"):
        weighted_reg_solve(c[::-1].tocsr(), x, y, reg)


def test_spark_matching_and_native_implicit_differ():
    """The two CPU modes solve different objectives (each is checked by
    tests/contract/test_factor_model.py)."""
    df, _ = generate_interactions(SyntheticSpec(n_interactions=20_000, seed=4))
    train, _ = split_interactions(ImplicitConversion("binary").apply(df), SplitSpec("last_n", n=2))
    from assets.embeddings.als_cpu import train_als_cpu

    a = train_als_cpu(train, AlsParams(rank=16, iterations=6, reg=0.5), match_spark=True)
    b = train_als_cpu(train, AlsParams(rank=16, iterations=6, reg=0.5), match_spark=False)
    assert a.params["match_spark"] and not b.params["match_spark"]
    assert a.user_ids.tolist() == b.user_ids.tolist()  # factors come back in id order after the count sort
    assert not np.allclose(a.user_factors, b.user_factors, atol=1e-3)


def test_spark_als_runs_the_tuned_range_of_iterations_without_overflowing(spark):
    """The tuning searches up to 20 iterations. Without a checkpoint directory Spark's ALS cannot
    cut its lineage, and about 20 iterations overflowed the executors' stack in ``make run``."""
    from assets.ingest.loaders import ImplicitConversion
    from assets.ingest.synthetic import SyntheticSpec, generate_interactions

    assert spark.sparkContext.getCheckpointDir()
    df, _ = generate_interactions(SyntheticSpec(n_interactions=4000, n_communities=4, seed=0))
    m = train_als(
        "spark", ImplicitConversion("binary").apply(df), AlsParams(rank=9, iterations=25), spark=spark
    )
    assert m.user_factors.shape == (df["user_id"].nunique(), 9) and np.isfinite(m.user_factors).all()
