"""Synthetic generator and loaders."""

import numpy as np
import pandas as pd
import pytest

from assets.ingest.loaders import ImplicitConversion, load_interaction_file, load_movielens_csv, load_movietweetings
from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from tests.conftest import shared_dataset


def test_generator_is_seeded_and_sized():
    a, ta = generate_interactions(SyntheticSpec(n_interactions=5000, seed=1))
    b, tb = generate_interactions(SyntheticSpec(n_interactions=5000, seed=1))
    c, _ = generate_interactions(SyntheticSpec(n_interactions=5000, seed=2))
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ta, tb)
    assert not a.equals(c)
    assert 4900 <= len(a) <= 5000  # duplicates (user, item, ts) removed
    assert not a.duplicated(["user_id", "item_id", "ts"]).any()
    assert list(a.columns) == ["user_id", "item_id", "ts", "rating"]
    big, _ = generate_interactions(SyntheticSpec(n_interactions=200_000, seed=1))
    assert len(big) > 190_000 and big["user_id"].nunique() > 3000


def test_generator_plants_communities_and_long_tail():
    spec = SyntheticSpec(n_interactions=50_000, n_communities=5, affinity=0.8, seed=3)
    df, truth = generate_interactions(spec)
    # Items a community uses most should mostly be used by that community: affinity is recoverable.
    d = df.merge(truth, on="user_id")
    top_comm_share = d.groupby("item_id")["community"].agg(lambda s: s.value_counts(normalize=True).iloc[0])
    weighted = (top_comm_share * d.groupby("item_id").size()).sum() / len(d)
    assert weighted > 0.7  # random assignment would give about 1/5
    counts = df["item_id"].value_counts().to_numpy()
    assert counts[: len(counts) // 10].sum() > 0.4 * counts.sum()  # top 10% of items take > 40% of events
    assert df.groupby("user_id").size().min() >= 1


def test_movielens_and_movietweetings_loaders(tmp_path):
    p = tmp_path / "ratings.csv"
    p.write_text("userId,movieId,rating,timestamp\n1,10,4.0,100\n2,10,3.5,200\n")
    df = load_movielens_csv(p)
    assert list(df.columns) == ["user_id", "item_id", "rating", "ts"]
    q = tmp_path / "ratings.dat"
    q.write_text("1::0104257::8::1365029107\n2::1074638::7::1365029108\n")
    dt = load_movietweetings(q)
    assert dt["item_id"].tolist() == [104257, 1074638] and dt["ts"].dtype == np.int64
    assert load_interaction_file(q).equals(dt)
    j = tmp_path / "x.jsonl"
    j.write_text('{"user": 1, "item": 2, "timestamp": 3, "rating": 1}\n')
    assert list(load_interaction_file(j).columns) == ["user_id", "item_id", "ts", "rating"]
    with pytest.raises(FileNotFoundError):
        load_interaction_file(tmp_path / "missing.csv")


def test_implicit_conversions():
    df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 3], "ts": [1, 2, 3], "rating": [1.0, 3.0, 5.0]})
    assert ImplicitConversion("binary").apply(df)["confidence"].tolist() == [1.0, 1.0, 1.0]
    assert ImplicitConversion("linear", alpha=2).apply(df)["confidence"].tolist() == [3.0, 7.0, 11.0]
    log = ImplicitConversion("log", alpha=1, epsilon=1).apply(df)["confidence"].to_numpy()
    np.testing.assert_allclose(log, 1 + np.log1p([1.0, 3.0, 5.0]))
    kept = ImplicitConversion("linear", min_rating=3).apply(df)
    assert kept["item_id"].tolist() == [2, 3]
    bad = df.assign(rating=[np.nan, -1.0, 4.0])
    out = ImplicitConversion("linear", min_rating=3).apply(bad)
    assert len(out) == 3  # NaN and negative are kept for the validation suite to report
    assert "confidence" not in ImplicitConversion().apply(df.drop(columns="rating")).columns
    with pytest.raises(ValueError, match="unknown implicit conversion"):
        ImplicitConversion("cubic").apply(df)


def test_real_files_load():
    ml = load_interaction_file(shared_dataset("ml-latest-small") / "ratings.csv")
    assert len(ml) == 100_836 and ml["user_id"].nunique() == 610
    mt = load_interaction_file(shared_dataset("movietweetings-100k") / "ratings.dat")
    assert len(mt) == 100_000 and mt["user_id"].nunique() == 16_554
