"""Synthetic generator and loaders."""

import numpy as np
import pandas as pd
import pytest

from assets.ingest.loaders import ImplicitConversion, load_interaction_file
from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from resources.validation import InputError
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
    df, id_map = load_interaction_file(p)
    assert list(df.columns) == ["user_id", "item_id", "ts", "rating"] and id_map.empty
    assert df.dtypes.astype(str).tolist() == ["int64", "int64", "int64", "float64"]
    q = tmp_path / "ratings.dat"
    q.write_text("1::0104257::8::1365029107\n2::1074638::7::1365029108\n")
    dt, _ = load_interaction_file(q)
    assert dt["item_id"].tolist() == [104257, 1074638] and dt["ts"].dtype == np.int64
    j = tmp_path / "x.jsonl"
    j.write_text('{"user": 1, "item": 2, "timestamp": 3, "rating": 1}\n')
    assert list(load_interaction_file(j)[0].columns) == ["user_id", "item_id", "ts", "rating"]
    with pytest.raises(InputError, match="file not found"):
        load_interaction_file(tmp_path / "missing.csv")


def test_string_ids_and_iso_timestamps_need_their_options(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text(
        "user_id,item_id,ts,rating\nalice,sku-1,2024-05-01T10:00:00Z,1\nbob,sku-1,2024-05-02T11:30:00+00:00,2\n"
    )
    with pytest.raises(InputError, match="row 2: user_id 'alice'.*id_mapping='stable_hash'"):
        load_interaction_file(p, ts_format="iso8601")
    with pytest.raises(InputError, match="ts_format='iso8601'"):
        load_interaction_file(p, id_mapping="stable_hash")
    df, id_map = load_interaction_file(p, id_mapping="stable_hash", ts_format="iso8601")
    assert df["ts"].tolist() == [1714557600, 1714649400]
    assert df["user_id"].nunique() == 2 and df["item_id"].nunique() == 1 and (df["user_id"] >= 0).all()
    again, _ = load_interaction_file(p, id_mapping="stable_hash", ts_format="iso8601")
    assert again["user_id"].tolist() == df["user_id"].tolist()  # stable across runs
    back = id_map.set_index("id")["original"]
    assert back[df["user_id"].iloc[0]] == "alice" and back[df["item_id"].iloc[0]] == "sku-1"


def test_implicit_conversions():
    df = pd.DataFrame(
        {"user_id": [1, 1, 2], "item_id": [1, 2, 3], "ts": [1, 2, 3], "rating": [1.0, 3.0, 5.0]}
    )
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
    ml, _ = load_interaction_file(shared_dataset("ml-latest-small") / "ratings.csv")
    assert len(ml) == 100_836 and ml["user_id"].nunique() == 610
    mt, _ = load_interaction_file(shared_dataset("movietweetings-100k") / "ratings.dat")
    assert len(mt) == 100_000 and mt["user_id"].nunique() == 16_554
