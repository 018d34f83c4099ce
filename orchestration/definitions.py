"""The one Definitions of the RecStack code location."""

from __future__ import annotations

import dagster as dg

from assets.embeddings import assets as embeddings
from assets.evaluation import assets as evaluation
from assets.indexes import assets as indexes
from assets.ingest import assets as ingest
from assets.retrieval import assets as retrieval
from orchestration.deployments import executor_for, resources_for
from orchestration.settings import deployment

ALL_ASSETS = dg.load_assets_from_modules([ingest, embeddings, indexes, retrieval, evaluation])

recommendation_job = dg.define_asset_job(
    "recommendation_slice", selection=dg.AssetSelection.all(),
    description="interactions → ALS → vectors → Faiss → lookalike audiences, evaluated and registered",
)
nightly_recommendation = dg.ScheduleDefinition(job=recommendation_job, cron_schedule="0 3 * * *", execution_timezone="UTC")


def build_definitions(name: str | None = None) -> dg.Definitions:
    name = name or deployment()
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[recommendation_job],
        schedules=[nightly_recommendation],
        resources=resources_for(name),
        executor=executor_for(name),
    )


defs = build_definitions()
