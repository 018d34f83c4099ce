"""Feature-warehouse assets: raw → DWD → MID → APP window features → opportunities → LibSVM.

Every daily asset is idempotent per partition: cells carry deterministic qualifiers and
timestamps, so re-materializing a day overwrites the same cells instead of adding new ones.
Each dataset is validated *before* it is written; a failed suite stops the partition there.
"""

import time
from datetime import date, datetime
from typing import Literal

import dagster as dg
import pandas as pd

from assets.features.dictionary import DEFAULT_PATH, history_needed, load_dictionary, parse_dictionary
from assets.features.export import (
    aggregate_to_opportunities,
    libsvm_export,
    model_feature_lists,
    opportunity_links,
    opportunity_samples,
)
from assets.features.layers import (
    app_cells,
    bad_raw_rows,
    build_dwd,
    compute_window_table,
    day_ms,
    day_range,
    dwd_frame,
    mid_cells,
    mid_daily_values,
    parse_dwd,
    parse_mid,
    parse_scd2,
    scd2_as_of,
    scd2_cells,
    scd2_merge,
    table_specs,
)
from assets.features.warehouse_config import DEFAULT_PATH as LAYOUT_PATH
from assets.features.warehouse_config import WarehouseConfig, load_warehouse_config
from assets.ingest.crm import (
    CrmSpec,
    daily_events,
    opportunities_on,
    read_events_file,
    read_opportunities_file,
)
from recstack.settings import warehouse_start
from resources.feature_store.base import FeatureStore
from resources.feature_store.resource import (
    CrmSourceResource,
    ExportResource,
    FeatureStoreResource,
    WarehouseLayoutResource,
)
from resources.retries import EXTERNAL_RETRY, transient_only
from resources.spark import SparkResource
from resources.validation import GreatExpectationsResource, InputError, ValidationSummary, gate

daily = dg.DailyPartitionsDefinition(start_date=warehouse_start(), end_offset=0)
# A day needs its history: backfills run one partition per run, in order.
ONE_DAY_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
# The dependency the UI shows spans the packaged layout's longest allowed window; a day reads as
# many days as the dictionary's longest window (history_needed).
HISTORY_DAYS = load_warehouse_config(LAYOUT_PATH).history_days


def _day(context) -> date:
    return datetime.strptime(context.partition_key, "%Y-%m-%d").date()


def _store(feature_store: FeatureStoreResource) -> FeatureStore:
    """The store with the warehouse tables ensured (TTL and VERSIONS from the resource)."""
    return feature_store.open(table_specs(feature_store.mid_ttl_days, feature_store.mid_versions).values())


def _layout(warehouse_layout: WarehouseLayoutResource) -> WarehouseConfig:
    """The validated warehouse layout; a bad file fails the step naming the entry (nothing written)."""
    try:
        return load_warehouse_config(warehouse_layout.path or LAYOUT_PATH)
    except InputError as e:
        raise e.failure() from None


def _crm_spec(crm: CrmSourceResource) -> CrmSpec:
    return CrmSpec(n_users=crm.n_users, n_opportunities=crm.n_opportunities, seed=crm.seed)


def _spec(name: str, desc: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(f"{name}_suite", asset=name, blocking=True, description=desc)


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"pandas"},
    check_specs=[
        _spec("raw_events", "row checks (feature, line, timestamp, value) + expectations/raw_events.json")
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
    layout = _layout(warehouse_layout)
    day, path = _day(context), crm.events_file(_day(context))
    try:
        df = read_events_file(path) if path else daily_events(day, layout, _crm_spec(crm))
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
    check_specs=[_spec("opportunity_snapshot", "expectations/opportunity_snapshot.json")],
)
def opportunity_snapshot(
    context: dg.AssetExecutionContext, crm: CrmSourceResource, gx: GreatExpectationsResource
):
    """Opportunities as of the day: linked user and phone ids, owner, conversion label."""
    day, path = _day(context), crm.opportunities_file(_day(context))
    try:
        df = read_opportunities_file(path) if path else opportunities_on(day, _crm_spec(crm))
    except InputError as e:
        raise e.failure() from None
    summary = gx.validate(
        df.drop(columns=["user_ids", "phone_ids"], errors="ignore").assign(
            user_ids=df["user_ids"].map(len) if "user_ids" in df else None,
            phone_ids=df["phone_ids"].map(len) if "phone_ids" in df else None,
        ),
        "opportunity_snapshot",
    )
    yield from gate(summary, "opportunity_snapshot_suite")
    yield dg.Output(df, metadata={"rows": len(df), "converted_rate": round(float(df["converted"].mean()), 4)})


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    retry_policy=EXTERNAL_RETRY,
    kinds={"hbase"},
    check_specs=[_spec("hbase_dwd_events", "expectations/dwd_events.json on the cells before writing")],
)
@transient_only
def hbase_dwd_events(
    context: dg.AssetExecutionContext,
    raw_events: pd.DataFrame,
    feature_store: FeatureStoreResource,
    gx: GreatExpectationsResource,
):
    """DWD detail: one cell per distinct event, qualifier ``{feature}_{line}_{yyyyMMddHHmmss}_{value}``
    (``#k`` appended for the k-th other event on the same qualifier), ts = event time. A second
    delivery of an ``event_id`` is the same event and writes nothing new."""
    batch = build_dwd(raw_events)
    frame = dwd_frame(batch.cells)
    yield from gate(gx.validate(frame, "dwd_events"), "hbase_dwd_events_suite")
    if batch.redeliveries or batch.collisions:
        context.log.info(
            f"{batch.events_in} events: {batch.redeliveries} redelivered event id(s) kept once, "
            f"{batch.collisions} distinct event(s) on a shared qualifier kept with a #k suffix"
        )
    t0 = time.perf_counter()
    n = _store(feature_store).put_cells("dwd_events", batch.cells)
    secs = time.perf_counter() - t0
    yield dg.MaterializeResult(
        metadata={
            "cells": n,
            "rows": int(frame["rowkey"].nunique()),
            "events_in": batch.events_in,
            "redeliveries_dropped": batch.redeliveries,
            "qualifier_collisions_kept": batch.collisions,
            "write_cells_per_s": round(n / max(secs, 1e-9)),
        }
    )


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    retry_policy=EXTERNAL_RETRY,
    kinds={"hbase"},
    deps=[hbase_dwd_events],
    check_specs=[_spec("hbase_mid_daily", "expectations/mid_daily.json on the day's values before writing")],
)
@transient_only
def hbase_mid_daily(
    context: dg.AssetExecutionContext,
    opportunity_snapshot: pd.DataFrame,
    feature_store: FeatureStoreResource,
    gx: GreatExpectationsResource,
    warehouse_layout: WarehouseLayoutResource,
):
    """MID: per entity, event type and line the day's aggregations (``{feature}_{agg}_{line}_{yyyyMMdd}``),
    plus the target-population tags (``t:target_{task}`` per computation, and ``t:dim``) of every
    entity an opportunity links to through a dimension of the layout."""
    layout = _layout(warehouse_layout)
    day = _day(context)
    store = _store(feature_store)
    dwd = parse_dwd(store.scan("dwd_events", ts_min=day_ms(day), ts_max=day_ms(day) + 86_400_000))
    mid = mid_daily_values(dwd, layout)
    yield from gate(gx.validate(mid, "mid_daily", layout.suite_params()), "hbase_mid_daily_suite")
    links = opportunity_links(opportunity_snapshot, layout)
    targets = dict(zip(links["entity_id"], links["dim"]))
    n = store.put_cells("mid_daily", mid_cells(mid, day, targets, tuple(t.tag for t in layout.tasks)))
    yield dg.MaterializeResult(
        metadata={
            "cells": n,
            "values": len(mid),
            "target_entities": len(targets),
            "dwd_events_read": len(dwd),
        }
    )


@dg.asset(partitions_def=daily, backfill_policy=ONE_DAY_PER_RUN, retry_policy=EXTERNAL_RETRY, kinds={"hbase"})
@transient_only
def opportunity_owner_history(
    context: dg.AssetExecutionContext, opportunity_snapshot: pd.DataFrame, feature_store: FeatureStoreResource
) -> dg.MaterializeResult:
    """SCD2 (zipper) history of opportunity owners: one row per validity interval; merge days in order."""
    store = _store(feature_store)
    hist = parse_scd2(store.scan("scd_opportunity_owner"), "opp_id")
    closed, opened = scd2_merge(
        hist, opportunity_snapshot[["opp_id", "owner"]], _day(context), "opp_id", ["owner"]
    )
    store.put_cells("scd_opportunity_owner", scd2_cells(pd.concat([closed, opened]), "opp_id", ["owner"]))
    return dg.MaterializeResult(
        metadata={
            "intervals_closed": len(closed),
            "intervals_opened": len(opened),
            "history_rows": len(hist) + len(opened),
        }
    )


class DictionaryConfig(dg.Config):
    path: str = str(DEFAULT_PATH)


@dg.asset(kinds={"csv", "hbase"})
def feature_dictionary(
    context: dg.AssetExecutionContext,
    config: DictionaryConfig,
    feature_store: FeatureStoreResource,
    warehouse_layout: WarehouseLayoutResource,
) -> dg.Output[pd.DataFrame]:
    """The feature dictionary (a data file), validated row by row against the warehouse layout
    (its dimensions, MID features and longest window) and loaded into its table."""
    layout = _layout(warehouse_layout)
    try:
        df = load_dictionary(config.path)
        entries = parse_dictionary(df, layout)
    except InputError as e:
        raise e.at(config.path).failure() from None
    df = df.assign(id=df["id"].astype("int64"))
    _store(feature_store).put_cells(
        "feature_dictionary",
        [
            (r["name"].encode(), f"f:{k}".encode(), str(v).encode(), 0)
            for r in df.to_dict("records")
            for k, v in r.items()
        ],
    )
    n_cols = sum(len(e.funcs) * len(e.windows) * len(layout.lines) for e in entries)
    return dg.Output(
        df,
        metadata={
            "entries": len(df),
            "derived_columns": n_cols,
            "dictionary": dg.MetadataValue.md(df.to_markdown(index=False)),
        },
    )


class WindowConfig(dg.Config):
    """``numpy``: the single-node kernel; ``spark``: the same kernel in ``mapInPandas`` over entity
    shards. ``task``: the layout's computation whose tagged population and lines are computed."""

    engine: Literal["numpy", "spark"] = "numpy"
    spark_shards: int = 8
    task: str = "conversion"


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"hbase", "pandas"},
    ins={"feature_dictionary": dg.AssetIn()},
    deps=[
        dg.AssetDep(
            "hbase_mid_daily",
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-(HISTORY_DAYS - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
            ),
        )
    ],
    check_specs=[
        _spec("window_features", "expectations/window_features.json (monotone windows, COUNT ≤ window)")
    ],
)
def window_features(
    context: dg.AssetExecutionContext,
    config: WindowConfig,
    feature_dictionary: pd.DataFrame,
    feature_store: FeatureStoreResource,
    gx: GreatExpectationsResource,
    spark: SparkResource,
    warehouse_layout: WarehouseLayoutResource,
):
    """APP layer: every dictionary function × window × line of the task, for each entity its MID tag
    marks, from as many days of MID as the dictionary's longest window."""
    layout = _layout(warehouse_layout)
    task = layout.task(config.task)
    day = _day(context)
    store = _store(feature_store)
    entries = parse_dictionary(feature_dictionary, layout)
    lo, hi = day_range(day, history_needed(entries))
    t0 = time.perf_counter()
    long, dims = parse_mid(
        store.scan("mid_daily", columns=[b"m", b"t"], ts_min=lo, ts_max=hi, tag=task.tag), day
    )
    read_s = time.perf_counter() - t0
    ents = pd.DataFrame({"entity_id": sorted(dims), "dim": [dims[e] for e in sorted(dims)]})
    t0 = time.perf_counter()
    if config.engine == "spark":
        from assets.features.spark_windows import window_table_spark

        table = window_table_spark(
            spark.get_session(), long, ents, entries, task.lines, shards=config.spark_shards
        )
    else:
        table = compute_window_table(long, ents, entries, task.lines)
    comp_s = time.perf_counter() - t0
    yield from gate(gx.validate(table, "window_features", layout.suite_params()), "window_features_suite")
    n = store.put_cells("app_features", app_cells(table, day))
    values = int(table.shape[0] * (table.shape[1] - 2))
    yield dg.Output(
        table,
        metadata={
            "rows": len(table),
            "columns": table.shape[1] - 2,
            "app_cells": n,
            "engine": config.engine,
            "task": task.name,
            "lines": ", ".join(task.lines),
            "history_days_read": history_needed(entries),
            "mid_values_read": len(long),
            "read_seconds": round(read_s, 2),
            "compute_seconds": round(comp_s, 3),
            "derived_values_per_s": round(values / max(comp_s, 1e-9)),
        },
    )


class SampleConfig(dg.Config):
    """Which opportunities are samples, and their label."""

    label_column: str = "converted"
    require_activity: bool = True  # drop opportunities whose entities have no activity at all
    task: str = "conversion"  # the computation whose window features the samples carry (its lines)


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"pandas"},
    deps=[opportunity_owner_history],
    check_specs=[_spec("opportunity_features", "expectations/opportunity_features.json")],
)
def opportunity_features(
    context: dg.AssetExecutionContext,
    config: SampleConfig,
    window_features: pd.DataFrame,
    opportunity_snapshot: pd.DataFrame,
    feature_dictionary: pd.DataFrame,
    feature_store: FeatureStoreResource,
    gx: GreatExpectationsResource,
    warehouse_layout: WarehouseLayoutResource,
):
    """Entity features rolled up to opportunities (through every dimension's link) by each feature's
    dictionary rule, with owner (as of the day, from the SCD2 history) and label."""
    layout = _layout(warehouse_layout)
    lines = layout.task(config.task).lines
    entries = parse_dictionary(feature_dictionary, layout)
    feats = aggregate_to_opportunities(window_features, opportunity_snapshot, entries, layout, lines)
    hist = parse_scd2(_store(feature_store).scan("scd_opportunity_owner"), "opp_id")
    owners = (
        scd2_as_of(hist, _day(context))[["opp_id", "owner"]]
        if len(hist)
        else pd.DataFrame(columns=["opp_id", "owner"])
    )
    try:
        out = opportunity_samples(
            feats, owners, opportunity_snapshot, entries, lines, config.label_column, config.require_activity
        )
    except ValueError as e:
        raise dg.Failure(description=str(e)) from None
    fcols = [c for c in feats.columns if c != "opp_id"]
    yield from gate(gx.validate(out, "opportunity_features"), "opportunity_features_suite")
    yield dg.Output(
        out,
        metadata={
            "rows": len(out),
            "features": len(fcols),
            "positive_rate": round(float(out["label"].mean()), 4),
        },
    )


@dg.asset(partitions_def=daily, backfill_policy=ONE_DAY_PER_RUN, kinds={"libsvm"})
def libsvm_datasets(
    context: dg.AssetExecutionContext,
    opportunity_features: pd.DataFrame,
    feature_store: FeatureStoreResource,
    exports: ExportResource,
) -> dg.Output[dict]:
    """LibSVM: the full set over a stable, append-only feature index, and one remapped subset per
    model feature list in ``assets/features/data/model_features``."""
    store = _store(feature_store)
    index = {r.decode(): int(c[b"i:idx"][0]) for r, c in store.scan("feature_index")}
    export = libsvm_export(opportunity_features, index, model_feature_lists(), context.partition_key)
    # The index grows before the files name it: a crash in between leaves unused numbers, never reused ones.
    store.put_cells(
        "feature_index", [(k.encode(), b"i:idx", str(v).encode(), 0) for k, v in export.added.items()]
    )
    paths = {rel: exports.write_text(rel, text) for rel, text in export.files.items()}
    st = export.stats
    full = next(p for rel, p in paths.items() if rel.endswith("/full.libsvm"))
    manifest = {
        "partition": context.partition_key,
        **st,
        "full": full,
        "models": {
            m: {**v, "path": next(p for rel, p in paths.items() if rel.endswith(f"/{m}.libsvm"))}
            for m, v in st["models"].items()
        },
    }
    ratio = st["full_bytes"] / max(1, st["jsonl_bytes"])
    return dg.Output(
        manifest,
        metadata={
            "rows": st["rows"],
            "features": st["features"],
            "index_added": st["index_added"],
            "libsvm_bytes": st["full_bytes"],
            "jsonl_bytes": st["jsonl_bytes"],
            "size_vs_jsonl": round(ratio, 3),
            "path": full,
            "models": dg.MetadataValue.json(manifest["models"]),
        },
    )
