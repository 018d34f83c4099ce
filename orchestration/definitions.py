"""The one Definitions of the RecStack code location.

Each stage package's asset modules are discovered (``load_assets_from_package_module``) with the
package's name as their group, so a new ``*_assets.py`` module is picked up without a list to
edit. The groups read in the order the data flows: ingest → tuning → embeddings → indexes →
retrieval → evaluation, with the feature warehouse beside them.
"""

from __future__ import annotations

import dagster as dg

import assets.embeddings
import assets.evaluation
import assets.features
import assets.indexes
import assets.ingest
import assets.retrieval
import assets.tuning
from assets.features._shared import daily
from assets.features.app_assets import feature_dictionary
from orchestration.deployments import executor_for, resources_for
from orchestration.monitoring import (
    check_failure_alert,
    freshness_checks,
    freshness_sensor,
    run_failure_alert,
)
from orchestration.sensors import champion_alias_sensor, rebuild_als_serving, rescore_opportunities
from recstack import names
from recstack.settings import configure_process, deployment

STAGES = (
    assets.ingest,
    assets.features,
    assets.tuning,
    assets.embeddings,
    assets.indexes,
    assets.retrieval,
    assets.evaluation,
)
ALL_ASSETS = [
    a
    for stage in STAGES
    for a in dg.load_assets_from_package_module(stage, group_name=stage.__name__.rsplit(".", 1)[-1])
]

CONVERSION = dg.AssetSelection.assets(*names.CONVERSION_ASSETS)
RECOMMENDATION = (
    dg.AssetSelection.groups("ingest", "tuning", "embeddings", "indexes", "retrieval", "evaluation")
    - CONVERSION
)
recommendation_job = dg.define_asset_job(
    names.RECOMMENDATION_JOB,
    selection=RECOMMENDATION,
    description="interactions → tuning → ALS, item2vec, two-tower, entity vectors → Faiss and Milvus → "
    "lookalike audiences and similar entities, evaluated and promoted by policy",
)
nightly_recommendation = dg.ScheduleDefinition(
    job=recommendation_job, cron_schedule="0 3 * * *", execution_timezone="UTC"
)

WAREHOUSE_DAILY = (
    dg.AssetSelection.groups("features") - dg.AssetSelection.assets(feature_dictionary) - CONVERSION
)
warehouse_job = dg.define_asset_job(
    names.WAREHOUSE_JOB,
    selection=WAREHOUSE_DAILY,
    partitions_def=daily,
    description="raw_events → DWD → MID → window features → opportunities → LibSVM for one day",
)
dictionary_job = dg.define_asset_job(
    names.DICTIONARY_JOB, selection=dg.AssetSelection.assets(feature_dictionary)
)
warehouse_schedule = dg.build_schedule_from_partitioned_job(warehouse_job, hour_of_day=1, minute_of_hour=30)
conversion_job = dg.define_asset_job(
    names.CONVERSION_JOB,
    selection=CONVERSION,
    partitions_def=daily,
    description="matured samples → conversion model → champion by policy → opportunity scores → "
    "assignment to sales staff, for one day",
)
# After the warehouse's day (01:30): the day's features and snapshot are in.
conversion_schedule = dg.build_schedule_from_partitioned_job(conversion_job, hour_of_day=2, minute_of_hour=15)
entity_updates_job = dg.define_asset_job(
    names.ENTITY_UPDATES_JOB,
    selection=dg.AssetSelection.assets(names.ENTITY_PROFILE_CHANGES),
    description="the day's new, changed and deleted entity profiles upserted into the served collection",
)
entity_updates_schedule = dg.ScheduleDefinition(
    job=entity_updates_job, cron_schedule="0 * * * *", execution_timezone="UTC"
)
online_metrics_job = dg.define_asset_job(
    names.ONLINE_METRICS_JOB,
    selection=dg.AssetSelection.assets(names.ONLINE_METRICS),
    description="served impressions joined to the posted clicks and conversions: CTR per model version",
)
online_metrics_schedule = dg.ScheduleDefinition(
    job=online_metrics_job, cron_schedule="30 2 * * *", execution_timezone="UTC"
)
FRESHNESS_CHECKS = freshness_checks(ALL_ASSETS, daily, RECOMMENDATION)
# The sensor launches these as their deadlines pass; make run evaluates them once at its end.
freshness_job = dg.define_asset_job(
    names.FRESHNESS_JOB,
    selection=dg.AssetSelection.checks(*FRESHNESS_CHECKS),
    description="every daily asset's and the recommendation slice's freshness checks, evaluated now",
)


def build_definitions(name: str | None = None, overrides: dict | None = None) -> dg.Definitions:
    """The code location for deployment ``name``; ``overrides`` replaces resources (tests)."""
    configure_process()
    name = name or deployment()
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=FRESHNESS_CHECKS,
        jobs=[
            recommendation_job,
            warehouse_job,
            dictionary_job,
            rebuild_als_serving,
            entity_updates_job,
            online_metrics_job,
            conversion_job,
            rescore_opportunities,
            freshness_job,
        ],
        schedules=[
            nightly_recommendation,
            warehouse_schedule,
            entity_updates_schedule,
            online_metrics_schedule,
            conversion_schedule,
        ],
        sensors=[
            champion_alias_sensor,
            freshness_sensor(FRESHNESS_CHECKS),
            run_failure_alert,
            check_failure_alert,
        ],
        resources={**resources_for(name), **(overrides or {})},
        executor=executor_for(name),
    )


defs = build_definitions()
