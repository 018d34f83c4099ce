"""The Spark path of the window engine: ``mapInPandas`` over entity shards, same kernel.

Rows are repartitioned by ``entity_id`` so every series of an entity lands in one shard; each
shard's batches are concatenated and passed to :func:`compute_window_table`, the function the
single-node path uses, so the two cannot disagree on a definition.
"""

from __future__ import annotations

import pandas as pd

from assets.features.dictionary import Entry
from assets.features.layers import compute_window_table, output_columns


def window_table_spark(spark, long: pd.DataFrame, entities: pd.DataFrame, entries: list[Entry], shards: int = 8) -> pd.DataFrame:
    """Compute the APP table on Spark; returns it as pandas, rows sorted by ``entity_id``."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    # Entities without any value still need a row: a marker row per entity carries its dim.
    marker = entities.assign(mid_feature="", line="", offset=-1, value=0.0)
    rows = long.merge(entities, on="entity_id", how="inner")
    rows = pd.concat([rows, marker], ignore_index=True)[["entity_id", "dim", "mid_feature", "line", "offset", "value"]]
    rows["offset"] = rows["offset"].astype("int64")
    in_schema = StructType([StructField("entity_id", StringType()), StructField("dim", StringType()),
                            StructField("mid_feature", StringType()), StructField("line", StringType()),
                            StructField("offset", LongType()), StructField("value", DoubleType())])
    names = [c[-1] for c in output_columns(entries)]
    out_schema = StructType([StructField("entity_id", StringType()), StructField("dim", StringType()),
                             *[StructField(n, DoubleType()) for n in names]])

    def shard(batches):
        pdf = pd.concat(list(batches), ignore_index=True)
        if pdf.empty:
            return
        ents = pdf[["entity_id", "dim"]].drop_duplicates("entity_id")
        yield compute_window_table(pdf[pdf["offset"] >= 0], ents, entries)

    sdf = spark.createDataFrame(rows, schema=in_schema).repartition(shards, "entity_id")
    out = sdf.mapInPandas(shard, schema=out_schema).toPandas()
    return out.sort_values("entity_id", kind="stable").reset_index(drop=True)
