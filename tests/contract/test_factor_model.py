"""One contract for everything that produces a FactorModel, in the style of ``implicit``'s
``RecommenderBaseTestMixin``: run against every ALS engine (the GPU engine skips with the reason
where no CUDA build of ``implicit`` or no GPU is present).
"""

import zipfile

import numpy as np
import pandas as pd
import pytest

from assets.common.topk import interaction_mask
from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.evaluation.offline import SplitSpec, evaluate_als_vs_popularity, split_interactions
from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions

ENGINES = ["spark", "implicit", "implicit-native", "implicit-gpu"]
PARAMS = AlsParams(rank=16, iterations=8, reg=0.05, alpha=10.0, seed=1)


@pytest.fixture(scope="module")
def data():
    df, _ = generate_interactions(SyntheticSpec(n_interactions=20_000, n_communities=8, seed=7))
    return split_interactions(ImplicitConversion("binary").apply(df), SplitSpec("last_n", n=2))


@pytest.fixture(scope="module", params=ENGINES)
def trained(request, data):
    train, test = data
    engine = request.param
    if engine == "implicit-gpu":
        from assets.embeddings.als_gpu import gpu_available

        if not gpu_available():
            pytest.skip("implicit-gpu: no CUDA build of implicit or no visible GPU on this machine")
    if engine == "spark":
        spark = request.getfixturevalue("spark")
        return engine, train_als("spark", train, PARAMS, spark=spark), train, test
    if engine == "implicit-native":
        return engine, train_als("implicit", train, PARAMS, match_spark=False), train, test
    return engine, train_als(engine, train, PARAMS), train, test


def test_ids_sorted_unique_and_aligned_with_rows(trained):
    _, m, train, _ = trained
    for ids, f, col in ((m.user_ids, m.user_factors, "user_id"), (m.item_ids, m.item_factors, "item_id")):
        assert ids.dtype == np.int64 and ids.ndim == 1
        assert np.all(np.diff(ids) > 0), "ids must be sorted and unique"
        assert len(ids) == len(f)
        assert set(ids.tolist()) == set(train[col].unique().tolist())


def test_factors_are_float32_of_rank(trained):
    _, m, _, _ = trained
    assert m.user_factors.dtype == np.float32 and m.item_factors.dtype == np.float32
    assert m.user_factors.shape[1] == m.item_factors.shape[1] == PARAMS.rank
    assert np.isfinite(m.user_factors).all() and np.isfinite(m.item_factors).all()


def test_save_load_round_trip_without_pickle(trained, tmp_path):
    engine, m, _, _ = trained
    m.save(tmp_path / "m")
    with zipfile.ZipFile(tmp_path / "m" / "factors.npz") as z:  # plain .npy members, no object arrays
        assert sorted(z.namelist()) == [
            "item_factors.npy",
            "item_ids.npy",
            "user_factors.npy",
            "user_ids.npy",
        ]
    with np.load(tmp_path / "m" / "factors.npz", allow_pickle=False) as arrays:
        assert all(arrays[k].dtype != object for k in arrays.files)
    back = FactorModel.load(tmp_path / "m")
    for k in ("user_ids", "user_factors", "item_ids", "item_factors"):
        np.testing.assert_array_equal(getattr(back, k), getattr(m, k))
    assert back.params["engine"] == ("implicit" if engine == "implicit-native" else engine)


def test_recommend_returns_padded_ids_and_scores_without_seen_items(trained):
    _, m, train, _ = trained
    users = np.r_[m.user_ids[:50], -5]  # -5: an unknown user
    k = len(m.item_ids)  # every item: rows with seen items must pad
    ids, scores = m.recommend(users, k=k, exclude=train)
    assert (
        ids.shape == scores.shape == (len(users), k) and ids.dtype == np.int64 and scores.dtype == np.float32
    )
    assert (ids[-1] == -1).all() and np.isneginf(scores[-1]).all()
    seen = interaction_mask(train, users, m.item_ids)
    for r in range(len(users) - 1):
        got = ids[r][ids[r] >= 0]
        n_seen = seen[r].nnz
        assert len(got) == len(m.item_ids) - n_seen  # exactly the unseen items, then padding
        assert not set(got.tolist()) & set(m.item_ids[seen[r].indices].tolist())
        assert (ids[r][len(got) :] == -1).all() and np.isneginf(scores[r][len(got) :]).all()
        assert np.all(np.diff(scores[r][: len(got)]) <= 0)  # best first
    small, _ = m.recommend(users[:3], k=5)
    assert small.shape == (3, 5) and (small[:, 0] >= 0).all()


def test_beats_popularity_on_planted_communities(trained):
    engine, m, train, test = trained
    res = evaluate_als_vs_popularity(train, test, m, 10)
    assert res["als"]["ndcg@10"] > 1.2 * res["popularity"]["ndcg@10"], (engine, res)


def test_recommend_is_batched_not_per_user(trained, monkeypatch):
    """recommend scores users in blocks: one matrix product per batch, whatever the user count."""
    _, m, _, _ = trained
    import assets.embeddings.factor_model as fm

    calls = []
    real = fm.batched_topk
    monkeypatch.setattr(fm, "batched_topk", lambda *a, **kw: calls.append(len(a[0])) or real(*a, **kw))
    m.recommend(m.user_ids, k=10, exclude=pd.DataFrame({"user_id": [], "item_id": []}, dtype=np.int64))
    assert calls == [len(m.user_ids)]
