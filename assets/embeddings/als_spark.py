"""The Spark MLlib engine of implicit ALS (``local[*]`` here, any cluster in production).

Ids are mapped to dense int32 indices before Spark sees them (MLlib requires int ids), and the
learned factors are collected back into a :class:`FactorModel` keyed by the original int64 ids.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

import numpy as np
import pandas as pd

from assets.embeddings.als import AlsParams, index_ids
from assets.embeddings.factor_model import FactorModel

log = logging.getLogger(__name__)


def train_als_spark(spark, interactions: pd.DataFrame, params: AlsParams = AlsParams()) -> FactorModel:
    """Train implicit ALS with ``pyspark.ml.recommendation.ALS``.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    interactions : DataFrame
        Needs ``user_id``, ``item_id`` and ``confidence`` (non-negative).
    params : AlsParams

    Returns
    -------
    FactorModel
        Factors for every user and item that occurs in ``interactions``.
    """
    from pyspark.ml.recommendation import ALS

    t0 = time.perf_counter()
    triples, user_ids, item_ids = index_ids(interactions)
    sdf = spark.createDataFrame(triples)
    als = ALS(
        rank=params.rank,
        maxIter=params.iterations,
        regParam=params.reg,
        alpha=params.alpha,
        implicitPrefs=True,
        userCol="u",
        itemCol="i",
        ratingCol="confidence",
        seed=params.seed,
        coldStartStrategy="drop",
    )
    model = als.fit(sdf)
    uf = model.userFactors.toPandas()
    itf = model.itemFactors.toPandas()
    user_factors = np.zeros((len(user_ids), params.rank), dtype=np.float32)
    item_factors = np.zeros((len(item_ids), params.rank), dtype=np.float32)
    user_factors[uf["id"].to_numpy()] = np.stack(uf["features"].to_numpy()).astype(np.float32)
    item_factors[itf["id"].to_numpy()] = np.stack(itf["features"].to_numpy()).astype(np.float32)
    secs = time.perf_counter() - t0
    log.info(
        "Spark ALS: %d users, %d items, %d pairs, rank %d in %.1fs",
        len(user_ids),
        len(item_ids),
        len(triples),
        params.rank,
        secs,
    )
    return FactorModel(
        user_ids=user_ids,
        user_factors=user_factors,
        item_ids=item_ids,
        item_factors=item_factors,
        params={
            "engine": "spark",
            **asdict(params),
            "train_seconds": round(secs, 2),
            "n_pairs": int(len(triples)),
        },
    )
