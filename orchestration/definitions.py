"""The one Definitions of the RecStack code location."""

from __future__ import annotations

import dagster as dg

from assets.embeddings import assets as embeddings
from assets.embeddings import entity_assets, item2vec_assets, kb_assets
from assets.evaluation import assets as evaluation
from assets.evaluation import kb_assets as kb_evaluation
from assets.evaluation import lookalike_assets as lookalike_evaluation
from assets.evaluation import promotion_assets, tuning_assets
from assets.features import assets as features
from assets.indexes import assets as indexes
from assets.ingest import assets as ingest
from assets.retrieval import assets as retrieval
from orchestration.deployments import executor_for, resources_for
from orchestration.sensors import champion_alias_sensor, rebuild_als_serving
from orchestration.settings import deployment

# The asset group of every stage, set once here: one group per package.
GROUPS = {
    "ingest": [ingest],
    "features": [features],
    "embeddings": [embeddings, item2vec_assets, entity_assets, kb_assets],
    "indexes": [indexes],
    "retrieval": [retrieval],
    "evaluation": [evaluation, kb_evaluation, lookalike_evaluation, promotion_assets, tuning_assets],
}
ALL_ASSETS = [a for group, modules in GROUPS.items() for a in dg.load_assets_from_modules(modules, group_name=group)]

RECOMMENDATION = dg.AssetSelection.groups("ingest", "embeddings", "indexes", "retrieval", "evaluation")
recommendation_job = dg.define_asset_job(
    "recommendation_slice", selection=RECOMMENDATION,
    description="interactions → ALS → vectors → Faiss → lookalike audiences, evaluated and registered",
)
nightly_recommendation = dg.ScheduleDefinition(job=recommendation_job, cron_schedule="0 3 * * *", execution_timezone="UTC")

WAREHOUSE_DAILY = dg.AssetSelection.groups("features") - dg.AssetSelection.assets("feature_dictionary")
warehouse_job = dg.define_asset_job(
    "feature_warehouse_daily", selection=WAREHOUSE_DAILY, partitions_def=features.daily,
    description="raw_events → DWD → MID → window features → opportunities → LibSVM for one day",
)
dictionary_job = dg.define_asset_job("feature_dictionary_load", selection=dg.AssetSelection.assets("feature_dictionary"))
warehouse_schedule = dg.build_schedule_from_partitioned_job(warehouse_job, hour_of_day=1, minute_of_hour=30)


def build_definitions(name: str | None = None, overrides: dict | None = None) -> dg.Definitions:
    """The code location for deployment ``name``; ``overrides`` replaces resources (tests)."""
    name = name or deployment()
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[recommendation_job, warehouse_job, dictionary_job, rebuild_als_serving],
        schedules=[nightly_recommendation, warehouse_schedule],
        sensors=[champion_alias_sensor],
        resources={**resources_for(name), **(overrides or {})},
        executor=executor_for(name),
    )


defs = build_definitions()
