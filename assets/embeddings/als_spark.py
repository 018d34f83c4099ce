"""The Spark MLlib engine of implicit ALS (``local[*]`` here, any cluster in production).

The interactions never pass through the driver: Spark reads them from a Parquet dataset (or,
for small data, takes a pandas frame), aggregates duplicate pairs, and maps ids onto dense
int32 indices (MLlib requires int ids) by a distributed numbering: hash-partitioned distinct ids,
a row number within each partition, and per-partition offsets from a window over the
partition counts (all in the JVM: no Python worker starts, so the executors need no Python).
The executors write the factors, keyed by the original int64 ids, as Parquet; the driver reads
back only the factor matrices.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from assets.embeddings.als import AlsParams, pack_factor_model
from assets.embeddings.factor_model import FactorModel

log = logging.getLogger(__name__)


def dense_index(pairs, column: str, index_column: str, partitions: int = 16):
    """Distinct values of ``column`` numbered ``0 … n-1`` as ``index_column`` (int32), by the
    executors.

    Hash partitioning and a row number in value order within each partition make the numbering
    a function of the values alone: the plan is evaluated twice (the counts, then the join), and
    a sampled range partitioning would draw other boundaries the second time.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    distinct = pairs.select(column).distinct().repartition(partitions, column)
    ranked = distinct.withColumn("_pid", F.spark_partition_id()).withColumn(
        "_rn", F.row_number().over(Window.partitionBy("_pid").orderBy(column)) - 1
    )
    # Each partition's first number: the sizes of the partitions before it (a window over one
    # row per partition; nothing reaches the driver and no Python worker starts).
    offsets = (
        ranked.groupBy("_pid")
        .count()
        .withColumn("_offset", F.sum("count").over(Window.orderBy("_pid")) - F.col("count"))
        .drop("count")
    )
    return ranked.join(F.broadcast(offsets), "_pid").select(
        column, (F.col("_offset") + F.col("_rn")).cast("int").alias(index_column)
    )


def _factors(path: str, id_column: str, rank: int) -> tuple[np.ndarray, np.ndarray]:
    t = pq.read_table(path).sort_by(id_column)
    ids = t.column(id_column).to_numpy().astype(np.int64)
    flat = t.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, np.asarray(flat, np.float32).reshape(len(ids), rank)


def train_als_spark(
    spark, interactions: pd.DataFrame | str, params: AlsParams = AlsParams(), scratch_dir: str = ""
) -> FactorModel:
    """Train implicit ALS with ``pyspark.ml.recommendation.ALS``.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    interactions : DataFrame or str
        A pandas frame (small data), or the path of a Parquet dataset that Spark reads itself;
        either needs ``user_id``, ``item_id`` and ``confidence`` (non-negative).
    params : AlsParams
    scratch_dir : str
        Where the executors write the factors (a path every executor and the driver can read;
        default a local temporary folder, right for ``local[*]`` and a one-host cluster).

    Returns
    -------
    FactorModel
        Factors for every user and item that occurs in ``interactions``, ids sorted.
    """
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    if isinstance(interactions, str):
        sdf = spark.read.parquet(interactions)
    else:
        sdf = spark.createDataFrame(interactions[["user_id", "item_id", "confidence"]])
    pairs = sdf.groupBy("user_id", "item_id").agg(F.sum("confidence").cast("float").alias("confidence"))
    users, items = dense_index(pairs, "user_id", "u"), dense_index(pairs, "item_id", "i")
    triples = (
        pairs.join(F.broadcast(items), "item_id")
        .join(users, "user_id")
        .select("u", "i", "confidence")
        .persist()
    )
    n_pairs = triples.count()
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
    model = als.fit(triples)
    scratch = scratch_dir or tempfile.mkdtemp(prefix="recstack-als-")
    out = f"{scratch.rstrip('/')}/factors-{uuid.uuid4().hex[:8]}"
    try:
        for side, factors, ids, idx in (
            ("users", model.userFactors, users, "u"),
            ("items", model.itemFactors, items, "i"),
        ):
            factors.join(ids.withColumnRenamed(idx, "id"), "id").drop("id").write.parquet(f"{out}/{side}")
        user_ids, user_factors = _factors(f"{out}/users", "user_id", params.rank)
        item_ids, item_factors = _factors(f"{out}/items", "item_id", params.rank)
    finally:
        triples.unpersist()
        if "://" not in out:
            shutil.rmtree(scratch if not scratch_dir else out, ignore_errors=True)
    return pack_factor_model(
        "spark",
        user_ids,
        user_factors,
        item_ids,
        item_factors,
        params,
        time.perf_counter() - t0,
        n_pairs,
    )
