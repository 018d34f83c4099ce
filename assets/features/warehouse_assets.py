"""Feature-warehouse ingest assets: raw events → DWD cells → MID daily values (with the target
tags), and the opportunities' SCD2 owner history.

Every daily asset is idempotent per partition: cells carry deterministic qualifiers and
timestamps, so re-materializing a day overwrites the same cells instead of adding new ones.
Each dataset is validated *before* it is written; a failed suite stops the partition there.
"""

import time
from typing import Literal

import dagster as dg
import pandas as pd

from assets.features._shared import (
    ONE_DAY_PER_RUN,
    crm_spec,
    daily,
    day_of,
    layout_of,
    monitor,
    monitor_specs,
    open_store,
    suite_check,
)
from assets.features.export import opportunity_links
from assets.features.labels import conversion_cells, with_optional_columns
from assets.features.layers import (
    bad_raw_rows,
    build_dwd,
    day_ms,
    dwd_frame,
    mid_cells,
    mid_daily_values,
    parse_dwd,
    parse_scd2,
    scd2_cells,
    scd2_merge,
)
from assets.ingest.crm import daily_events, opportunities_on, read_events_file, read_opportunities_file
from resources.feature_store.resource import CrmSourceResource, FeatureStoreResource, WarehouseLayoutResource
from resources.monitoring import MonitoringResource
from resources.retries import EXTERNAL_RETRY, transient_only
from resources.spark import SparkResource
from resources.storage import ParquetDataset
from resources.validation import GreatExpectationsResource, InputError, ValidationSummary, gate

EMPTY_MID = pd.DataFrame(columns=["entity_id", "mid_feature", "line", "value"])


class LayerConfig(dg.Config):
    """``pandas``: the day's cells built in this process (the small default); ``spark``: built by
    Spark SQL on the executors (:mod:`assets.features.spark_layers`), the same cells, written to
    the store one batch at a time. ``write_batch_cells``: cells per store write on that path."""

    engine: Literal["pandas", "spark"] = "pandas"
    write_batch_cells: int = 100_000


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"pandas"},
    check_specs=[
        suite_check(
            "raw_events", "row checks (feature, line, timestamp, value) + expectations/raw_events.json"
        )
    ],
)
def raw_events(
    context: dg.AssetExecutionContext,
    crm: CrmSourceResource,
    gx: GreatExpectationsResource,
    warehouse_layout: WarehouseLayoutResource,
):
    """One day of CRM activity: the layout's event types (by default calls, value = seconds; logins,
    posts, clicks) on its business lines, row-checked against the layout."""
    layout = layout_of(warehouse_layout)
    day, path = day_of(context), crm.events_file(day_of(context))
    try:
        df = read_events_file(path) if path else daily_events(day, layout, crm_spec(crm))
    except InputError as e:
        raise e.failure() from None
    problems = bad_raw_rows(df, layout)
    summary = (
        ValidationSummary("raw_events", False, len(df), len(problems), problems)
        if problems
        else gx.validate(df, "raw_events", layout.suite_params())
    )
    yield from gate(summary, "raw_events_suite")
    counts = df.groupby(["feature", "line"]).size().rename("events").reset_index()
    yield dg.Output(
        df,
        metadata={
            "rows": len(df),
            "entities": int(df["entity_id"].nunique()),
            "by_feature": dg.MetadataValue.md(counts.to_markdown(index=False)),
        },
    )


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"pandas"},
    check_specs=[suite_check("opportunity_snapshot", "expectations/opportunity_snapshot.json")],
)
def opportunity_snapshot(
    context: dg.AssetExecutionContext,
    crm: CrmSourceResource,
    gx: GreatExpectationsResource,
    feature_store: FeatureStoreResource,
    warehouse_layout: WarehouseLayoutResource,
):
    """Opportunities as of the day: linked user and phone ids, business line, owner (empty when
    unassigned), whether and when the current cycle converted. Each dated conversion is kept as
    a cell of ``opportunity_conversions`` (the time-aligned labels read them)."""
    day, path = day_of(context), crm.opportunities_file(day_of(context))
    lines = layout_of(warehouse_layout).lines
    try:
        df = read_opportunities_file(path) if path else opportunities_on(day, crm_spec(crm), lines)
    except InputError as e:
        raise e.failure() from None
    df = with_optional_columns(df, lines)
    summary = gx.validate(
        df.drop(columns=["user_ids", "phone_ids"], errors="ignore").assign(
            user_ids=df["user_ids"].map(len) if "user_ids" in df else None,
            phone_ids=df["phone_ids"].map(len) if "phone_ids" in df else None,
        ),
        "opportunity_snapshot",
    )
    yield from gate(summary, "opportunity_snapshot_suite")
    cells = conversion_cells(df, day)
    open_store(feature_store).put_cells("opportunity_conversions", cells)
    yield dg.Output(
        df,
        metadata={
            "rows": len(df),
            "converted_rate": round(float(df["converted"].mean()), 4),
            "dated_conversions": len(cells),
            "unassigned": int((df["owner"].astype(str) == "").sum()),
        },
    )


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    retry_policy=EXTERNAL_RETRY,
    kinds={"hbase"},
    check_specs=[
        suite_check("hbase_dwd_events", "expectations/dwd_events.json on the cells before writing"),
        *monitor_specs("hbase_dwd_events", "volume"),
    ],
)
@transient_only
def hbase_dwd_events(
    context: dg.AssetExecutionContext,
    config: LayerConfig,
    raw_events: ParquetDataset,
    feature_store: FeatureStoreResource,
    gx: GreatExpectationsResource,
    spark: SparkResource,
    monitoring: MonitoringResource,
):
    """DWD detail: one cell per distinct event, qualifier ``{feature}_{line}_{yyyyMMddHHmmss}_{value}``
    (``#k`` appended for the k-th other event on the same qualifier), ts = event time. A second
    delivery of an ``event_id`` is the same event and writes nothing new."""
    store = open_store(feature_store)
    t0 = time.perf_counter()
    if config.engine == "spark":
        from assets.features.spark_layers import (
            dwd_cells_spark,
            dwd_counts,
            iter_cells,
            remove_scratch,
            scratch_path,
            write_cells,
        )

        session = spark.get_session()
        out = scratch_path(spark.scratch_dir, "dwd")
        try:
            cells, delivered = dwd_cells_spark(session, session.read.parquet(raw_events.uri))
            # Built once: the gate, the counts and the store writes read the files.
            write_cells(cells, out, keep=("suffixed",))
            written = session.read.parquet(out)
            frame = written.selectExpr(
                "cast(row as string) as rowkey", "cast(qualifier as string) as qualifier", "ts"
            )
            yield from gate(gx.validate(frame, "dwd_events"), "hbase_dwd_events_suite")
            counts = dwd_counts(written, delivered)
            rows = frame.select("rowkey").distinct().count()
            n = sum(store.put_cells("dwd_events", b) for b in iter_cells(out, config.write_batch_cells))
        finally:
            remove_scratch(out)
    else:
        batch = build_dwd(raw_events.to_pandas())
        frame = dwd_frame(batch.cells)
        yield from gate(gx.validate(frame, "dwd_events"), "hbase_dwd_events_suite")
        counts = {
            "events_in": batch.events_in,
            "redeliveries": batch.redeliveries,
            "collisions": batch.collisions,
        }
        rows = int(frame["rowkey"].nunique())
        n = store.put_cells("dwd_events", batch.cells)
    secs = time.perf_counter() - t0
    if counts["redeliveries"] or counts["collisions"]:
        context.log.info(
            f"{counts['events_in']} events: {counts['redeliveries']} redelivered event id(s) kept once, "
            f"{counts['collisions']} distinct event(s) on a shared qualifier kept with a #k suffix"
        )
    monitored = yield from monitor(context, monitoring, "hbase_dwd_events", {"cells": n, "rows": rows})
    yield dg.MaterializeResult(
        metadata={
            **monitored,
            "engine": config.engine,
            "events_in": counts["events_in"],
            "redeliveries_dropped": counts["redeliveries"],
            "qualifier_collisions_kept": counts["collisions"],
            "build_and_write_cells_per_s": round(n / max(secs, 1e-9)),
        }
    )


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    retry_policy=EXTERNAL_RETRY,
    kinds={"hbase"},
    deps=[hbase_dwd_events],
    check_specs=[
        suite_check("hbase_mid_daily", "expectations/mid_daily.json on the day's values before writing"),
        *monitor_specs("hbase_mid_daily", "volume"),
    ],
)
@transient_only
def hbase_mid_daily(
    context: dg.AssetExecutionContext,
    config: LayerConfig,
    opportunity_snapshot: pd.DataFrame,
    feature_store: FeatureStoreResource,
    gx: GreatExpectationsResource,
    warehouse_layout: WarehouseLayoutResource,
    spark: SparkResource,
    monitoring: MonitoringResource,
):
    """MID: per entity, event type and line the day's aggregations (``{feature}_{agg}_{line}_{yyyyMMdd}``),
    plus the target-population tags (``t:target_{task}`` per computation, and ``t:dim``) of every
    entity an opportunity links to through a dimension of the layout."""
    layout = layout_of(warehouse_layout)
    day = day_of(context)
    store = open_store(feature_store)
    scan = store.scan("dwd_events", ts_min=day_ms(day), ts_max=day_ms(day) + 86_400_000)
    links = opportunity_links(opportunity_snapshot, layout)
    targets = dict(zip(links["entity_id"], links["dim"]))
    tags = tuple(t.tag for t in layout.tasks)
    if config.engine == "spark":
        from assets.features.spark_layers import (
            iter_cells,
            mid_cells_spark,
            mid_values_spark,
            remove_scratch,
            scan_to_parquet,
            scratch_path,
            write_cells,
        )

        session = spark.get_session()
        src, out = scratch_path(spark.scratch_dir, "dwd-scan"), scratch_path(spark.scratch_dir, "mid")
        try:
            dwd_read = scan_to_parquet(scan, f"{src}/part-0.parquet", config.write_batch_cells)
            mid = mid_values_spark(session.read.parquet(src), layout.mid_features)
            mid.write.parquet(f"{out}/values")
            values = session.read.parquet(f"{out}/values")
            yield from gate(gx.validate(values, "mid_daily", layout.suite_params()), "hbase_mid_daily_suite")
            write_cells(mid_cells_spark(values, day), f"{out}/cells")
            n = sum(
                store.put_cells("mid_daily", b) for b in iter_cells(f"{out}/cells", config.write_batch_cells)
            )
            n += store.put_cells("mid_daily", mid_cells(EMPTY_MID, day, targets, tags))  # the tags
            n_values = values.count()
        finally:
            remove_scratch(src)
            remove_scratch(out)
    else:
        dwd = parse_dwd(scan)
        dwd_read = len(dwd)
        mid = mid_daily_values(dwd, layout)
        yield from gate(gx.validate(mid, "mid_daily", layout.suite_params()), "hbase_mid_daily_suite")
        n = store.put_cells("mid_daily", mid_cells(mid, day, targets, tags))
        n_values = len(mid)
    monitored = yield from monitor(context, monitoring, "hbase_mid_daily", {"cells": n, "values": n_values})
    yield dg.MaterializeResult(
        metadata={
            **monitored,
            "engine": config.engine,
            "target_entities": len(targets),
            "dwd_events_read": dwd_read,
        }
    )


@dg.asset(partitions_def=daily, backfill_policy=ONE_DAY_PER_RUN, retry_policy=EXTERNAL_RETRY, kinds={"hbase"})
@transient_only
def opportunity_owner_history(
    context: dg.AssetExecutionContext, opportunity_snapshot: pd.DataFrame, feature_store: FeatureStoreResource
) -> dg.MaterializeResult:
    """SCD2 (zipper) history of opportunity owners: one row per validity interval; merge days in order."""
    store = open_store(feature_store)
    hist = parse_scd2(store.scan("scd_opportunity_owner"), "opp_id")
    closed, opened = scd2_merge(
        hist, opportunity_snapshot[["opp_id", "owner"]], day_of(context), "opp_id", ["owner"]
    )
    store.put_cells("scd_opportunity_owner", scd2_cells(pd.concat([closed, opened]), "opp_id", ["owner"]))
    return dg.MaterializeResult(
        metadata={
            "intervals_closed": len(closed),
            "intervals_opened": len(opened),
            "history_rows": len(hist) + len(opened),
        }
    )
