"""Feature-warehouse APP assets: the feature dictionary, window features, opportunities and LibSVM.

The window features read the MID days the dictionary's longest window needs, for the task's
tagged population; every dataset is validated before it is written.
"""

import time
from typing import Literal

import dagster as dg
import pandas as pd

from assets.features._shared import (
    HISTORY_DAYS,
    ONE_DAY_PER_RUN,
    daily,
    day_of,
    layout_of,
    monitor,
    monitor_specs,
    open_store,
    suite_check,
    write_libsvm,
)
from assets.features.dictionary import DEFAULT_PATH, history_needed, load_dictionary, parse_dictionary
from assets.features.export import (
    LEARNED_FEATURES_DIR,
    aggregate_to_opportunities,
    model_feature_lists,
    opportunity_samples,
)
from assets.features.layers import (
    app_cells,
    compute_window_table,
    day_range,
    parse_mid,
    parse_scd2,
    scd2_as_of,
)
from resources.feature_store.resource import ExportResource, FeatureStoreResource, WarehouseLayoutResource
from resources.monitoring import MonitoringResource
from resources.spark import SparkResource
from resources.validation import GreatExpectationsResource, InputError, gate


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
    layout = layout_of(warehouse_layout)
    try:
        df = load_dictionary(config.path)
        entries = parse_dictionary(df, layout)
    except InputError as e:
        raise e.at(config.path).failure() from None
    df = df.assign(id=df["id"].astype("int64"))
    open_store(feature_store).put_cells(
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
        suite_check(
            "window_features", "expectations/window_features.json (monotone windows, COUNT ≤ window)"
        ),
        *monitor_specs("window_features", "volume", "psi"),
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
    monitoring: MonitoringResource,
):
    """APP layer: every dictionary function × window × line of the task, for each entity its MID tag
    marks, from as many days of MID as the dictionary's longest window. Its row count and each
    column's distribution are checked against the trailing days before the cells are written."""
    layout = layout_of(warehouse_layout)
    task = layout.task(config.task)
    day = day_of(context)
    store = open_store(feature_store)
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
    monitored = yield from monitor(
        context, monitoring, "window_features", {"rows": len(table)}, table.drop(columns=["entity_id", "dim"])
    )
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
            **monitored,
        },
    )


class SampleConfig(dg.Config):
    """Which opportunities are samples (the open ones; the label comes later, see
    ``conversion_samples``)."""

    require_activity: bool = True  # drop opportunities whose entities have no activity at all
    task: str = "conversion"  # the computation whose window features the samples carry (its lines)


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"pandas"},
    deps=[dg.AssetKey("opportunity_owner_history")],
    check_specs=[
        suite_check("opportunity_features", "expectations/opportunity_features.json"),
        *monitor_specs("opportunity_features", "volume", "psi"),
    ],
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
    monitoring: MonitoringResource,
):
    """The day's open opportunities with their entities' features rolled up (through every
    dimension's link) by each feature's dictionary rule, owner (as of the day, from the SCD2
    history; empty when unassigned) and business line. Features only: the label of a day is
    what happens after it."""
    layout = layout_of(warehouse_layout)
    lines = layout.task(config.task).lines
    entries = parse_dictionary(feature_dictionary, layout)
    feats = aggregate_to_opportunities(window_features, opportunity_snapshot, entries, layout, lines)
    hist = parse_scd2(open_store(feature_store).scan("scd_opportunity_owner"), "opp_id")
    owners = (
        scd2_as_of(hist, day_of(context))[["opp_id", "owner"]]
        if len(hist)
        else pd.DataFrame(columns=["opp_id", "owner"])
    )
    try:
        out = opportunity_samples(
            feats, owners, opportunity_snapshot, entries, lines, config.require_activity
        )
    except ValueError as e:
        raise dg.Failure(description=str(e)) from None
    fcols = [c for c in feats.columns if c != "opp_id"]
    yield from gate(gx.validate(out, "opportunity_features"), "opportunity_features_suite")
    monitored = yield from monitor(
        context, monitoring, "opportunity_features", {"rows": len(out)}, out[fcols]
    )
    yield dg.Output(
        out,
        metadata={
            "features": len(fcols),
            "unassigned": int((out["owner"] == "").sum()),
            **monitored,
        },
    )


@dg.asset(partitions_def=daily, backfill_policy=ONE_DAY_PER_RUN, kinds={"libsvm"})
def libsvm_datasets(
    context: dg.AssetExecutionContext,
    opportunity_features: pd.DataFrame,
    feature_store: FeatureStoreResource,
    exports: ExportResource,
) -> dg.Output[dict]:
    """LibSVM of the day's predict set (the open opportunities, label 0, ``full.ids`` naming each
    row's opportunity): the full set over a stable, append-only feature index, and one remapped
    subset per model feature list: the hand-written ones in ``assets/features/data/model_features``,
    where a model's own learned list (``model_features/<model>.txt`` under the export root, written
    when its champion moves) replaces the cold-start default of the same name."""
    export, paths = write_libsvm(
        open_store(feature_store),
        exports,
        opportunity_features,
        model_feature_lists(learned=exports.texts(LEARNED_FEATURES_DIR)),
        context.partition_key,
    )
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
