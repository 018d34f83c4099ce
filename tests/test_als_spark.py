"""The Spark ALS engine's own steps: the executors' id numbering and the factors read back."""

import numpy as np
import pandas as pd
import pytest

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.als_spark import dense_index

pytestmark = pytest.mark.spark


def test_ids_are_numbered_0_to_n_minus_1_once_each_and_the_same_every_time(spark):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": rng.integers(0, 10**12, 60_000), "item_id": 1, "confidence": 1.0})
    sdf = spark.createDataFrame(df)
    a = dense_index(sdf, "user_id", "u").toPandas().set_index("user_id")["u"].sort_index()
    b = dense_index(sdf, "user_id", "u").toPandas().set_index("user_id")["u"].sort_index()
    assert a.index.tolist() == sorted(df["user_id"].unique().tolist())
    assert sorted(a.tolist()) == list(range(len(a))) and a.equals(b)


def test_a_parquet_path_and_a_frame_give_the_same_model(spark, tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "user_id": rng.integers(0, 300, 6000) * 1_000_003,
            "item_id": rng.integers(0, 80, 6000) * 7,
            "confidence": rng.random(6000).astype(np.float32),
        }
    )
    path = tmp_path / "interactions.parquet"
    df.to_parquet(path)
    p = AlsParams(rank=4, iterations=3)
    a, b = train_als("spark", str(path), p, spark=spark), train_als("spark", df, p, spark=spark)
    assert a.user_ids.tolist() == sorted(df["user_id"].unique().tolist()) and len(a.item_ids) == 80
    assert np.array_equal(a.user_ids, b.user_ids) and np.allclose(a.user_factors, b.user_factors, atol=1e-5)
    dup = df.groupby(["user_id", "item_id"]).ngroups
    assert a.params["n_pairs"] == dup < len(df)  # duplicate pairs are summed, as the other engines do
