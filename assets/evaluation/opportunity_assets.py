"""The CRM loop's end: the conversion champion by policy, every open opportunity scored by it,
and the unassigned ones matched to sales staff, exported per business line for the CRM."""

import dagster as dg
import numpy as np
import pandas as pd

from assets.evaluation._shared import promote_by_policy
from assets.features._shared import ONE_DAY_PER_RUN, daily, open_store
from assets.features.assignment import assign, staff_affinity
from assets.features.conversion import ConversionModel, measure
from assets.features.export import LEARNED_FEATURES_DIR
from assets.features.labels import parse_conversions
from recstack import names
from resources.feature_store.resource import ExportResource, FeatureStoreResource
from resources.mlflow_tracking import MlflowResource
from resources.retries import EXTERNAL_RETRY, transient_only


def load_conversion_model(mlflow_tracking: MlflowResource, version: str) -> ConversionModel:
    """``recstack-conversion`` version ``version`` from the registry (booster text, no pickle)."""
    folder = mlflow_tracking.download_version(names.CONVERSION_MODEL, version) / "artifacts" / "conversion"
    return ConversionModel.load(folder)


def champion_model(mlflow_tracking: MlflowResource) -> tuple[str, ConversionModel]:
    version = mlflow_tracking.alias_version(names.CONVERSION_MODEL, names.CHAMPION)
    if version is None:
        raise dg.Failure(f"{names.CONVERSION_MODEL} has no {names.CHAMPION}: nothing to score with")
    return version, load_conversion_model(mlflow_tracking, version)


@dg.asset(
    partitions_def=daily, backfill_policy=ONE_DAY_PER_RUN, kinds={"mlflow"}, retry_policy=EXTERNAL_RETRY
)
@transient_only
def conversion_promotion(
    context: dg.AssetExecutionContext,
    conversion_samples: pd.DataFrame,
    conversion_model: dict,
    mlflow_tracking: MlflowResource,
    exports: ExportResource,
) -> dg.Output[dict]:
    """The champion scored on the same held-out days as the challenger; ``champion`` moves by
    ``mlflow/policies/recstack-conversion.yaml`` (a constant score, AUC 0.5, is the baseline).
    The champion's high-gain features then become its learned feature list
    (``model_features/<feature_list>.txt`` under the export root), which the next subset export
    uses in place of the hand-written default."""
    holdout = conversion_samples[conversion_samples["feature_day"].isin(conversion_model["holdout_days"])]
    y = holdout["label"].to_numpy()
    base = measure(y, np.zeros(len(y)))

    def score_champion(version: str, params: dict) -> dict:
        return measure(y, load_conversion_model(mlflow_tracking, version).predict(holdout))

    out = promote_by_policy(
        context,
        mlflow_tracking,
        names.CONVERSION_MODEL,
        str(conversion_model["model_version"]),
        conversion_model["metrics"],
        base,
        score_champion,
    )
    version, champ = champion_model(mlflow_tracking)
    p = champ.params
    selected = champ.selected_features(float(p["min_gain_share"]))
    path = exports.write_text(
        f"{LEARNED_FEATURES_DIR}/{p['feature_list']}.txt",
        f"# {names.CONVERSION_MODEL} v{version}: gain share >= {p['min_gain_share']}\n"
        + "".join(f"{f}\n" for f in selected),
    )
    learned = {"path": path, "count": len(selected), "champion_version": version}
    return dg.Output(
        {**out.value, "learned_features": learned},
        metadata={
            **out.metadata,
            "learned_features": dg.MetadataValue.path(path),
            "learned_feature_count": len(selected),
        },
    )


@dg.asset(
    partitions_def=daily,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"lightgbm"},
    deps=[names.CONVERSION_PROMOTION],
    retry_policy=EXTERNAL_RETRY,
)
@transient_only
def opportunity_scores(
    context: dg.AssetExecutionContext, opportunity_features: pd.DataFrame, mlflow_tracking: MlflowResource
) -> dg.Output[pd.DataFrame]:
    """Every open opportunity of the day scored by the ``recstack-conversion`` champion, ranked
    within its business line."""
    version, model = champion_model(mlflow_tracking)
    df = opportunity_features[["opp_id", "line", "owner"]].copy()
    df["score"] = model.predict(opportunity_features)
    df["rank"] = df.groupby("line")["score"].rank(ascending=False, method="first").astype(np.int64)
    df["model_version"] = version
    df = df.sort_values(["line", "rank"]).reset_index(drop=True)
    per_line = df.groupby("line")["score"].agg(["size", "mean"]).round(4)
    return dg.Output(
        df,
        metadata={
            "rows": len(df),
            "model_version": version,
            "per_line": dg.MetadataValue.md(per_line.rename(columns={"size": "rows"}).to_markdown()),
        },
    )


class AssignmentConfig(dg.Config):
    """How many new opportunities one sales person takes per day."""

    daily_capacity: int = 3


@dg.asset(partitions_def=daily, backfill_policy=ONE_DAY_PER_RUN, kinds={"csv"})
def opportunity_assignment(
    context: dg.AssetExecutionContext,
    config: AssignmentConfig,
    opportunity_scores: pd.DataFrame,
    opportunity_snapshot: pd.DataFrame,
    feature_store: FeatureStoreResource,
    exports: ExportResource,
) -> dg.Output[pd.DataFrame]:
    """The day's unassigned opportunities matched to sales staff under ``daily_capacity``, best
    score first, each to the person with the best smoothed conversion rate on its line
    (:mod:`assets.features.assignment`); one CSV per line (``opp_id, owner, score, rank``) under
    ``assignments/<day>/`` for the CRM's import."""
    converted = set(parse_conversions(open_store(feature_store).scan("opportunity_conversions"))["opp_id"])
    affinity = staff_affinity(opportunity_snapshot, converted)
    out, left = assign(opportunity_scores, affinity, config.daily_capacity)
    paths = {}
    for line, part in out.groupby("line"):
        paths[line] = exports.write_text(
            f"assignments/{context.partition_key}/{line}.csv",
            part.sort_values("rank")[["opp_id", "owner", "score", "rank"]].to_csv(index=False),
        )
    return dg.Output(
        out,
        metadata={
            "rows": len(out),
            "left_unassigned": left,
            "staff": int(affinity["owner"].nunique()),
            "daily_capacity": config.daily_capacity,
            "files": dg.MetadataValue.json(paths),
        },
    )
