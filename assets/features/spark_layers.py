"""The Spark path of the DWD and MID layers: a day's cells built by Spark SQL on the executors.

The rule is :func:`assets.features.layers.build_dwd`'s, stated again in Spark SQL so that the
day's events never pass through the driver: a second delivery of an ``event_id`` is dropped (the
later row wins), distinct events on one base qualifier are ranked by ``event_id`` and the k-th
other gets ``#k``, the value is printed as Python's ``%g`` prints it and the body is the compact
JSON ``{"event_id": …, **detail}``. The two paths build byte-identical DWD cells (a test holds them
to it on every simulated day), which is what lets a real-time writer, the offline batch and either
engine overwrite one another's cells.

Python runs in two places only, both on the executors and once per *distinct* value, never once
per event: a detail string's compact re-serialisation (details repeat: one per source system),
and the JSON escaping of an event id outside printable ASCII (Spark's JSON writer would leave it
unescaped where Python's escapes it).

MID values are aggregated by Spark from the DWD cells of the day. They equal the single-node
values; the text of a non-integer sum can differ in its last digit where Spark adds in another
order (floating-point addition is not associative), so MID cells are equal by value, not by byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from assets.features.layers import _detail_tail, day_ms

# The columns of a cell table on Spark and in its Parquet files (the store's put order).
CELL_COLUMNS = ("row", "qualifier", "value", "ts")
_PRINTABLE_ASCII = r"^[\x20-\x7e]*$"


def percent_g(col):
    """Python's ``f"{v:g}"`` of a double column, in Spark SQL.

    Java's ``%g`` rounds the shortest decimal form to six significant digits and lays it out as C
    does, but keeps trailing zeros ("120.000", "1.00000e-05"); stripping them gives Python's text.
    """
    from pyspark.sql import functions as F

    s = F.format_string("%g", col)
    s = F.regexp_replace(s, r"(\.[0-9]*?)0+(e|$)", "$1$2")
    return F.regexp_replace(s, r"\.(e|$)", "$1")


def python_float_repr(col):
    """Python's ``repr(float(v))`` of a double column where the two agree exactly: integral values
    below 1e16 ("3.0") and the decimal range [1e-3, 1e7), where Java's shortest form is Python's;
    elsewhere Java's text of the same double (read back as the same value)."""
    from pyspark.sql import functions as F

    integral = (F.col(col) == F.floor(F.col(col))) & (F.abs(F.col(col)) < 1e16)
    return F.when(integral, F.concat(F.col(col).cast("bigint").cast("string"), F.lit(".0"))).otherwise(
        F.col(col).cast("string")
    )


def salted_rowkey_col(entity):
    """:func:`resources.feature_store.base.salted_rowkey` in Spark SQL (two hex digits of MD5)."""
    from pyspark.sql import functions as F

    return F.concat(F.substring(F.md5(entity), 1, 2), entity)


def _detail_tails(spark, details):
    """``detail → ,"k":v…}`` for each distinct detail, computed on the executors by the single-node
    path's own function."""
    from pyspark.sql.types import StringType, StructField, StructType

    def tails(batches):
        for pdf in batches:
            yield pdf.assign(tail=[_detail_tail(d) for d in pdf["detail"]])

    schema = StructType([StructField("detail", StringType()), StructField("tail", StringType())])
    return details.mapInPandas(tails, schema=schema)


def _escaped_ids(ids):
    """``event_id → json.dumps(event_id)`` for ids outside printable ASCII, on the executors."""
    from pyspark.sql.types import StringType, StructField, StructType

    def esc(batches):
        for pdf in batches:
            yield pdf.assign(eid_json=[json.dumps(e) for e in pdf["event_id"]])

    schema = StructType([StructField("event_id", StringType()), StructField("eid_json", StringType())])
    return ids.mapInPandas(esc, schema=schema)


def dwd_cells_spark(spark, events):
    """The DWD cells of a day's raw events, as a Spark DataFrame.

    Parameters
    ----------
    spark : SparkSession
    events : pyspark.sql.DataFrame
        The raw events (:data:`assets.ingest.crm.RAW_COLUMNS`) in delivery order, as read from
        the day's file.

    Returns
    -------
    cells : pyspark.sql.DataFrame
        ``row``, ``qualifier``, ``value`` (binary) and ``ts`` (ms), plus ``redelivered`` and
        ``suffixed`` flags that :func:`dwd_counts` sums.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ev = events.withColumn("_pos", F.monotonically_increasing_id())  # delivery order
    latest = Window.partitionBy("event_id").orderBy(F.col("_pos").desc())
    ev = ev.withColumn("_k", F.row_number().over(latest))
    delivered = ev.select(F.count(F.lit(1)).alias("n"))
    ev = ev.filter(F.col("_k") == 1).drop("_k", "_pos")
    ts = F.to_timestamp(F.col("event_ts"), "yyyy-MM-dd'T'HH:mm:ss'Z'")
    value = F.col("value").cast("double")
    base = F.concat(
        F.lit("d:"),
        F.col("feature"),
        F.lit("_"),
        F.col("line").cast("string"),
        F.lit("_"),
        F.date_format(ts, "yyyyMMddHHmmss"),
        F.lit("_"),
        percent_g(value),
    )
    ev = ev.select(
        F.col("entity_id").cast("string").alias("entity_id"),
        F.col("event_id").cast("string").alias("event_id"),
        F.coalesce(F.col("detail").cast("string"), F.lit("")).alias("detail"),
        base.alias("base"),
        F.unix_millis(ts).alias("ts"),
    )
    rank = F.row_number().over(Window.partitionBy("entity_id", "base").orderBy("event_id")) - 1
    ev = ev.withColumn("_rank", rank)
    tails = _detail_tails(spark, ev.select("detail").distinct())
    plain = F.col("event_id").rlike(_PRINTABLE_ASCII)
    special = _escaped_ids(ev.filter(~plain).select("event_id").distinct())
    ev = ev.join(F.broadcast(tails), "detail", "left").join(special, "event_id", "left")
    eid_json = F.when(
        plain, F.concat(F.lit('"'), F.regexp_replace("event_id", r'(["\\])', r"\\$1"), F.lit('"'))
    ).otherwise(F.col("eid_json"))
    qualifier = F.when(
        F.col("_rank") > 0, F.concat(F.col("base"), F.lit("#"), F.col("_rank").cast("string"))
    ).otherwise(F.col("base"))
    cells = ev.select(
        salted_rowkey_col(F.col("entity_id")).cast("binary").alias("row"),
        qualifier.cast("binary").alias("qualifier"),
        F.concat(F.lit('{"event_id":'), eid_json, F.col("tail")).cast("binary").alias("value"),
        F.col("ts"),
        (F.col("_rank") > 0).alias("suffixed"),
    )
    return cells, delivered


def dwd_counts(cells, delivered) -> dict[str, int]:
    """``events_in``, ``redeliveries`` and ``collisions`` of a Spark DWD build (two small jobs)."""
    from pyspark.sql import functions as F

    n_in = int(delivered.first()["n"])
    agg = cells.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("suffixed").cast("int")).alias("s")).first()
    return {"events_in": n_in, "redeliveries": n_in - int(agg["n"]), "collisions": int(agg["s"] or 0)}


def mid_values_spark(dwd_cells, mid_features: list[str]):
    """The day's MID base values (``entity_id, mid_feature, line, value``) from DWD cells on Spark:
    :func:`assets.features.layers.mid_daily_values` over :func:`~assets.features.layers.parse_dwd`."""
    from pyspark.sql import functions as F

    q = F.col("qualifier").cast("string")
    pattern = r"^d:([a-z]+)_(\d{2})_(\d{14})_([^#]+)(?:#\d+)?$"
    parsed = dwd_cells.select(
        F.expr("substring(cast(row as string), 3)").alias("entity_id"),
        F.regexp_extract(q, pattern, 1).alias("feature"),
        F.regexp_extract(q, pattern, 2).alias("line"),
        F.regexp_extract(q, pattern, 4).cast("double").alias("value"),
    ).filter(F.col("feature") != "")
    g = parsed.groupBy("entity_id", "feature", "line").agg(
        F.count(F.lit(1)).cast("double").alias("cnt"),
        F.sum("value").alias("sum"),
        F.max("value").alias("max"),
    )
    long = g.select(
        "entity_id",
        "line",
        F.explode(
            F.array(
                *[
                    F.struct(
                        F.concat(F.col("feature"), F.lit(f"_{a}")).alias("mid_feature"),
                        F.col(a).alias("value"),
                    )
                    for a in ("cnt", "sum", "max")
                ]
            )
        ).alias("m"),
    ).select(
        "entity_id", F.col("m.mid_feature").alias("mid_feature"), "line", F.col("m.value").alias("value")
    )
    return long.filter(F.col("mid_feature").isin(list(mid_features)))


def mid_cells_spark(mid, day: date):
    """MID value cells (:func:`assets.features.layers.mid_cells` without the tags) on Spark."""
    from pyspark.sql import functions as F

    qual = F.concat(F.lit("m:"), F.col("mid_feature"), F.lit("_"), F.col("line"), F.lit(f"_{day:%Y%m%d}"))
    return mid.select(
        salted_rowkey_col(F.col("entity_id")).cast("binary").alias("row"),
        qual.cast("binary").alias("qualifier"),
        python_float_repr("value").cast("binary").alias("value"),
        F.lit(day_ms(day)).cast("bigint").alias("ts"),
    )


# -- between Parquet datasets and the store, one batch at a time --------------------------------
def write_cells(cells, path: str, keep: tuple[str, ...] = ()) -> None:
    """Write a Spark cell frame (and the ``keep`` columns) as Parquet in 16 MiB row groups, so a
    reader that streams it (:func:`iter_cells`) holds one small group at a time whatever the day's
    size."""
    cells.select(*CELL_COLUMNS, *keep).write.option("parquet.block.size", 16 << 20).parquet(path)


def _fs(path: str):
    """``(pyarrow filesystem, path)`` of a local path or a URI (Spark's ``s3a://`` is pyarrow's
    ``s3://``)."""
    import pyarrow.fs as pafs

    if "://" in path:
        return pafs.FileSystem.from_uri(path.replace("s3a://", "s3://", 1))
    return pafs.LocalFileSystem(), path


def iter_cells(path: str, batch_rows: int = 100_000) -> Iterator[list[tuple[bytes, bytes, bytes, int]]]:
    """The cells of a Parquet cell folder (Spark's part files) in batches of ``batch_rows``, read
    one row group at a time."""
    import pyarrow.fs as pafs

    fs, base = _fs(path)
    parts = sorted(
        i.path
        for i in fs.get_file_info(pafs.FileSelector(base))
        if i.type == pafs.FileType.File and i.path.endswith(".parquet")
    )
    for part in parts:
        with fs.open_input_file(part) as src, pq.ParquetFile(src) as f:
            for b in f.iter_batches(batch_size=batch_rows, columns=list(CELL_COLUMNS)):
                yield list(zip(*(b.column(c).to_pylist() for c in CELL_COLUMNS)))


def scan_to_parquet(rows, path: str, batch_rows: int = 100_000) -> int:
    """Write a store scan's ``(row, {column: (value, ts)})`` results as a cell file (a local path or
    a URI every executor can read), ``batch_rows`` cells at a time (what Spark reads where HBase's
    own input format is not configured)."""
    schema = pa.schema(
        [("row", pa.binary()), ("qualifier", pa.binary()), ("value", pa.binary()), ("ts", pa.int64())]
    )
    n, buf = 0, {c: [] for c in CELL_COLUMNS}
    fs, where = _fs(path)
    fs.create_dir(where.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(where) as out, pq.ParquetWriter(out, schema) as w:

        def flush():
            w.write_table(pa.table(buf, schema=schema))
            for v in buf.values():
                v.clear()

        for row, cells in rows:
            for col, (val, ts) in cells.items():
                buf["row"].append(row)
                buf["qualifier"].append(col)
                buf["value"].append(val)
                buf["ts"].append(ts)
                n += 1
            if len(buf["row"]) >= batch_rows:
                flush()
        flush()
    return n


def scratch_path(scratch_dir: str, what: str) -> str:
    """A fresh folder for a job's cell files under the Spark resource's scratch directory."""
    import tempfile
    import uuid

    base = scratch_dir or tempfile.mkdtemp(prefix="recstack-cells-")
    return f"{base.rstrip('/')}/{what}-{uuid.uuid4().hex[:8]}"


def remove_scratch(path: str) -> None:
    """Delete a local scratch folder, and the temporary folder above it when :func:`scratch_path`
    made one (remote ones are left to the object store's lifecycle rule)."""
    import os
    import shutil

    if "://" in path:
        return
    shutil.rmtree(path, ignore_errors=True)
    parent = os.path.dirname(path)
    if os.path.basename(parent).startswith("recstack-cells-"):
        try:
            os.rmdir(parent)
        except OSError:  # not empty: another folder of the same job still lives there
            pass
