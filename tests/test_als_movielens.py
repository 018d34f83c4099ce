"""On real data (ml-latest-small), Spark ALS beats the popularity baseline on NDCG@10."""

import pytest

from assets.embeddings.als import AlsParams
from assets.embeddings.als_spark import train_als_spark
from assets.evaluation.offline import SplitSpec, evaluate_als_vs_popularity, split_interactions
from assets.ingest.loaders import ImplicitConversion, load_interaction_file
from tests.conftest import shared_dataset

pytestmark = pytest.mark.slow


def test_als_beats_popularity_on_movielens(spark):
    raw, _ = load_interaction_file(shared_dataset("ml-latest-small") / "ratings.csv")
    df = ImplicitConversion("binary", min_rating=3.5).apply(raw)
    train, test = split_interactions(df, SplitSpec("last_n", n=5))
    model = train_als_spark(spark, train, AlsParams(rank=32, reg=0.05, alpha=10.0, iterations=10))
    res = evaluate_als_vs_popularity(train, test, model, 10)
    als, pop = res["als"]["ndcg@10"], res["popularity"]["ndcg@10"]
    print(f"ml-latest-small NDCG@10 ALS {als:.4f} vs popularity {pop:.4f}")
    assert als > pop
    assert res["als"]["coverage@10"] > res["popularity"]["coverage@10"]
