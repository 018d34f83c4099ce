"""The conversion model's daily assets: time-aligned training samples and the model.

A partition T reads the feature days ``T - horizon - window_days + 1 .. T - horizon``: the
latest days whose labels (a conversion in the next ``horizon`` days) the snapshots up to T
already show; the model trains on the first ``train_days`` of them and is measured on the last
``holdout_days`` (the days between are the purge, see :func:`split_holdout`). The window is
stated once, in :class:`~assets.features.conversion.ConversionParams`' defaults, because the
partition mapping is part of the graph.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.common._shared import param_values, params_config
from assets.features._shared import (
    ONE_DAY_PER_RUN,
    daily,
    day_of,
    monitor,
    monitor_specs,
    open_store,
    suite_check,
    write_libsvm,
)
from assets.features.conversion import (
    ConversionParams,
    fit_conversion,
    logistic_baseline,
    measure,
    split_holdout,
)
from assets.features.labels import labelled_samples, parse_conversions
from recstack import names
from resources.feature_store.resource import ExportResource, FeatureStoreResource
from resources.mlflow_tracking import MlflowResource, dagster_tags
from resources.monitoring import MonitoringResource
from resources.validation import GreatExpectationsResource, gate

WINDOW = ConversionParams()
TRAINING_DAYS = dg.TimeWindowPartitionMapping(
    start_offset=-(WINDOW.horizon_days + WINDOW.window_days - 1), end_offset=-WINDOW.horizon_days
)
CONVERSION_PYFUNC = str(Path(__file__).with_name("conversion_pyfunc.py"))

ConversionConfig = params_config(
    ConversionParams,
    "ConversionConfig",
    "The conversion model's trees, holdout and learned feature list "
    "(:class:`~assets.features.conversion.ConversionParams`; the sample window is the graph's).",
    exclude=("horizon_days", "train_days", "holdout_days"),
)


def conversion_params(config) -> ConversionParams:
    return ConversionParams(**param_values(config, ConversionParams))


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"pandas", "libsvm"},
    ins={names.OPPORTUNITY_FEATURES: dg.AssetIn(partition_mapping=TRAINING_DAYS)},
    deps=[
        dg.AssetDep(
            names.OPPORTUNITY_SNAPSHOT,
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-(WINDOW.horizon_days + WINDOW.window_days - 2), end_offset=0
            ),
        )
    ],
    check_specs=[
        suite_check(names.CONVERSION_SAMPLES, "expectations/conversion_samples.json"),
        *monitor_specs(names.CONVERSION_SAMPLES, "volume", "label_rate"),
    ],
)
def conversion_samples(
    context: dg.AssetExecutionContext,
    opportunity_features: dict[str, pd.DataFrame],
    feature_store: FeatureStoreResource,
    gx: GreatExpectationsResource,
    exports: ExportResource,
    monitoring: MonitoringResource,
):
    """Every open opportunity of each matured feature day, labelled 1 when it converts within
    the horizon after that day (from ``opportunity_conversions``, which the snapshots up to this
    partition filled); exported as LibSVM under ``libsvm/<day>/train`` with ``full.ids``
    (opportunity id and feature day per row)."""
    day = day_of(context)
    if isinstance(opportunity_features, pd.DataFrame):  # one day: the IO manager returns it bare
        opportunity_features = {context.asset_partition_key_range.start: opportunity_features}
    have = context.instance.get_materialized_partitions(dg.AssetKey(names.OPPORTUNITY_SNAPSHOT))
    if day.isoformat() not in have:
        raise dg.Failure(f"the opportunity snapshot of {day} is not in: labels up to it are unknown")
    conversions = parse_conversions(open_store(feature_store).scan("opportunity_conversions"))
    try:
        samples = labelled_samples(opportunity_features, conversions, WINDOW.horizon_days, day)
    except ValueError as e:
        raise dg.Failure(str(e)) from None
    yield from gate(gx.validate(samples, names.CONVERSION_SAMPLES), "conversion_samples_suite")
    rate = round(float(samples["label"].mean()), 4) if len(samples) else 0.0
    monitored = yield from monitor(
        context, monitoring, names.CONVERSION_SAMPLES, {"rows": len(samples)}, label_rate=rate
    )
    _, paths = write_libsvm(
        open_store(feature_store), exports, samples, {}, context.partition_key, subfolder="train"
    )
    by_day = samples.groupby("feature_day")["label"].agg(["size", "mean"]).round(4)
    yield dg.Output(
        samples,
        metadata={
            **monitored,
            "feature_days": ", ".join(by_day.index),
            "horizon_days": WINDOW.horizon_days,
            "positive_rate": rate,
            "per_day": dg.MetadataValue.md(
                by_day.rename(columns={"size": "rows", "mean": "positive"}).to_markdown()
            ),
            "libsvm": next(p for rel, p in paths.items() if rel.endswith("full.libsvm")),
        },
    )


@dg.asset(partitions_def=daily, backfill_policy=ONE_DAY_PER_RUN, kinds={"lightgbm", "mlflow"})
def conversion_model(
    context: dg.AssetExecutionContext,
    config: ConversionConfig,
    conversion_samples: pd.DataFrame,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """LightGBM on the window's first ``train_days``, measured on its latest ``holdout_days``,
    whose label windows no training label overlaps (AUC and the top decile's conversion rate
    against the base rate, beside a logistic regression on the same days), logged and registered
    as the ``challenger`` of ``recstack-conversion``."""
    params = conversion_params(config)
    train, holdout = split_holdout(conversion_samples, params.holdout_days, params.horizon_days)
    model = fit_conversion(train, params)
    y = holdout["label"].to_numpy()
    metrics = measure(y, model.predict(holdout))
    logistic = measure(y, logistic_baseline(train, holdout))
    selected = model.selected_features(params.min_gain_share)
    reg = mlflow_tracking.log_and_register(
        names.CONVERSION_MODEL,
        CONVERSION_PYFUNC,
        {"conversion": model.save},
        run_name=context.asset_key.to_user_string(),
        tags=dagster_tags(context),
        params={**model.params, "features": len(model.features), "holdout_rows": len(holdout)},
        metrics={**metrics, **{f"logistic_{k}": v for k, v in logistic.items()}},
        dicts={"selected_features.json": {"features": selected}},
        requirements=("lightgbm",),
        input_example=holdout[model.features].head(2),
    )
    context.log.info(
        "%s v%s: holdout AUC %.4f (logistic %.4f), top-decile lift %.2f",
        names.CONVERSION_MODEL,
        reg.version,
        metrics["auc"],
        logistic["auc"],
        metrics["top_decile_lift"],
    )
    gains = model.gain_shares()
    out = {
        "model_version": reg.version,
        "horizon_days": params.horizon_days,
        "run_id": reg.run_id,
        "holdout_days": sorted(holdout["feature_day"].unique().tolist()),
        "train_days": sorted(train["feature_day"].unique().tolist()),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "metrics": metrics,
        "logistic": logistic,
        "selected_features": selected,
    }
    return dg.Output(
        out,
        metadata={
            "model_version": reg.version,
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(reg.run_id)),
            "holdout_auc": round(metrics["auc"], 4),
            "logistic_auc": round(logistic["auc"], 4),
            "top_decile_lift": round(metrics["top_decile_lift"], 3),
            "base_rate": round(metrics["base_rate"], 4),
            "selected_features": len(selected),
            "top_gain": dg.MetadataValue.md(gains.head(10).round(4).to_frame("gain share").to_markdown()),
        },
    )
