"""The Spark path of the window engine: ``mapInPandas`` over entity shards, same kernel.

Each Spark row is one entity with its sparse (features × days) matrix packed as arrays (as an
HBase row holds all of an entity's cells), so the shuffle by entity moves one row per entity, not
one per value. Each shard's rows are unpacked and passed to :func:`compute_window_table`, the
function the single-node path uses, so the two cannot disagree on a definition. Features, lines
and dims travel as small integer codes and are decoded inside the shard.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from assets.features.dictionary import Entry
from assets.features.layers import compute_window_table, output_columns


def window_table_spark(
    spark,
    long: pd.DataFrame,
    entities: pd.DataFrame,
    entries: list[Entry],
    lines: tuple[str, ...],
    shards: int = 8,
) -> pd.DataFrame:
    """Compute the APP table on Spark; returns it as pandas, rows sorted by ``entity_id``."""
    from pyspark.sql.types import BinaryType, IntegerType, StructField, StructType

    ents = entities.sort_values("entity_id", kind="stable").reset_index(drop=True)
    ent_index = pd.Index(ents["entity_id"])
    dims = sorted(ents["dim"].unique())
    feats = sorted({e.data_src for e in entries})
    lg = long[long["entity_id"].isin(ent_index) & long["mid_feature"].isin(feats) & long["line"].isin(lines)]
    e = ent_index.get_indexer(lg["entity_id"]).astype(np.int32)
    order = np.argsort(e, kind="stable")
    e = e[order]
    f = pd.Index(feats).get_indexer(lg["mid_feature"]).astype(np.int8)[order]
    l = pd.Index(lines).get_indexer(lg["line"]).astype(np.int8)[order]
    o = lg["offset"].to_numpy(np.int16)[order]
    v = lg["value"].to_numpy(np.float64)[order]
    # Pack each entity's cells into byte strings (one row per entity, empty for inactive ones).
    bounds = np.searchsorted(e, np.arange(len(ents) + 1))
    sl = list(zip(bounds[:-1], bounds[1:]))
    rows = pd.DataFrame(
        {
            "e": np.arange(len(ents), dtype=np.int32),
            "f": [f[a:b].tobytes() for a, b in sl],
            "l": [l[a:b].tobytes() for a, b in sl],
            "o": [o[a:b].tobytes() for a, b in sl],
            "v": [v[a:b].tobytes() for a, b in sl],
        }
    )
    dim_of = pd.Index(dims).get_indexer(ents["dim"]).astype(np.int8)
    in_schema = StructType(
        [
            StructField("e", IntegerType()),
            StructField("f", BinaryType()),
            StructField("l", BinaryType()),
            StructField("o", BinaryType()),
            StructField("v", BinaryType()),
        ]
    )
    names = [c[-1] for c in output_columns(entries, lines)]
    # One binary column of float64s per row: a ~1,000-column schema costs Spark more in code
    # generation and Arrow conversion than the computation itself.
    out_schema = StructType([StructField("e", IntegerType()), StructField("x", BinaryType())])
    feats_a, lines_a, dims_a = np.array(feats), np.array(lines), np.array(dims)

    def shard(batches):
        pdf = pd.concat(list(batches), ignore_index=True)
        if pdf.empty:
            return
        ent = pdf["e"].to_numpy(np.int32)
        fv = np.frombuffer(b"".join(pdf["f"]), np.int8)
        n = np.fromiter((len(x) for x in pdf["f"]), np.int64, len(pdf))
        ent_df = pd.DataFrame({"entity_id": ent, "dim": dims_a[dim_of[ent]]})
        lg = pd.DataFrame(
            {
                "entity_id": np.repeat(ent, n),
                "mid_feature": feats_a[fv],
                "line": lines_a[np.frombuffer(b"".join(pdf["l"]), np.int8)],
                "offset": np.frombuffer(b"".join(pdf["o"]), np.int16).astype(np.int64),
                "value": np.frombuffer(b"".join(pdf["v"]), np.float64),
            }
        )
        t = compute_window_table(lg, ent_df, entries, tuple(lines))
        x = np.ascontiguousarray(t[names].to_numpy(np.float64))
        yield pd.DataFrame({"e": t["entity_id"].to_numpy(np.int32), "x": [r.tobytes() for r in x]})

    sdf = spark.createDataFrame(rows, schema=in_schema).repartition(shards, "e")
    out = sdf.mapInPandas(shard, schema=out_schema).toPandas()
    out = out.sort_values("e", kind="stable").reset_index(drop=True)
    e = out["e"].to_numpy()
    x = np.frombuffer(b"".join(out["x"]), dtype=np.float64).reshape(len(out), len(names))
    head = pd.DataFrame({"entity_id": ents["entity_id"].to_numpy()[e], "dim": ents["dim"].to_numpy()[e]})
    return pd.concat([head, pd.DataFrame(x, columns=names)], axis=1)
