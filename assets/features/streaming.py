"""The real-time path into the warehouse: Spark Structured Streaming over raw CRM events as they
arrive, each micro-batch checked by the offline row checks and written as DWD cells by the
offline builder, so the real-time and offline writes of an event are the same cell.

- Source: a landing folder of JSON-lines files locally (``files``); Spark's Kafka source in
  production (``kafka``, the value a JSON event; configured, not tested here).
- Sink: ``foreachBatch`` → :func:`write_micro_batch` → the feature store. A batch with a row the
  offline checks refuse is written, whole, to the ``rejected`` folder with the reasons, and
  nothing of it to the store: the stream goes on and loses nothing.
- Exactly-once in effect: Spark's checkpoint records each batch's input before it runs and its
  commit after; a batch killed midway is run again on restart with the same events, and
  rewriting a cell is a no-op (same row, qualifier, timestamp and value).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from assets.features.layers import bad_raw_rows, build_dwd
from assets.ingest.crm import RAW_COLUMNS
from resources.feature_store.base import FeatureStore

RAW_SCHEMA = (
    "event_id STRING, entity_type STRING, entity_id STRING, feature STRING, line STRING, "
    "event_ts STRING, value DOUBLE, detail STRING"
)


def write_micro_batch(
    events: pd.DataFrame, batch_id: int, layout, store: FeatureStore, rejected: str
) -> dict:
    """Check one micro-batch as the offline path does and write its DWD cells.

    Returns ``{"batch_id", "events", "cells", "rejected"}``; a refused batch goes to
    ``rejected/batch-<id>.json`` (its rows and the reasons) instead of the store."""
    events = events.reindex(columns=RAW_COLUMNS)
    if events.empty:
        return {"batch_id": batch_id, "events": 0, "cells": 0, "rejected": 0}
    problems = bad_raw_rows(events, layout)
    if problems:
        Path(rejected).mkdir(parents=True, exist_ok=True)
        doc = {"batch_id": batch_id, "problems": problems, "rows": events.to_dict(orient="records")}
        (Path(rejected) / f"batch-{batch_id}.json").write_text(json.dumps(doc, default=str))
        return {"batch_id": batch_id, "events": len(events), "cells": 0, "rejected": len(events)}
    cells = build_dwd(events).cells
    return {
        "batch_id": batch_id,
        "events": len(events),
        "cells": store.put_cells("dwd_events", cells),
        "rejected": 0,
    }


def event_stream(spark, source: str = "files", landing: str = "", kafka: dict | None = None):
    """The raw events as a streaming DataFrame of :data:`RAW_SCHEMA`: JSON-lines files as they
    land in ``landing`` (one file per trigger, in arrival order), or a Kafka topic
    (``kafka``: ``kafka.bootstrap.servers``, ``subscribe``, ...)."""
    if source == "files":
        if "://" not in landing:  # a local folder: there before the first file lands
            Path(landing).mkdir(parents=True, exist_ok=True)
        return spark.readStream.schema(RAW_SCHEMA).option("maxFilesPerTrigger", 1).json(landing)
    if source == "kafka":
        from pyspark.sql import functions as F

        raw = spark.readStream.format("kafka").options(**(kafka or {})).load()
        return raw.select(F.from_json(F.col("value").cast("string"), RAW_SCHEMA).alias("e")).select("e.*")
    raise ValueError(f"unknown event source {source!r} (files, kafka)")


def start_realtime_dwd(
    spark,
    events,
    layout,
    store_factory: Callable[[], FeatureStore],
    checkpoint: str,
    rejected: str,
    trigger_seconds: float = 1.0,
    on_batch: Callable[[dict], None] | None = None,
):
    """Start the streaming query: every micro-batch of ``events`` through
    :func:`write_micro_batch` into ``store_factory()``'s store, checkpointed in ``checkpoint``.
    Returns the ``StreamingQuery`` (``stop()``, ``awaitTermination()``)."""

    def batch(df, batch_id: int) -> None:
        out = write_micro_batch(df.toPandas(), batch_id, layout, store_factory(), rejected)
        if on_batch is not None:
            on_batch(out)

    return (
        events.writeStream.foreachBatch(batch)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{trigger_seconds:g} seconds")
        .start()
    )
