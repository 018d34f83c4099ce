"""The champion sensor: when an ML engineer (or the policy) moves ``champion``, what is built
from that model is rebuilt from the new champion: the ALS indexes (the recall service picks them
up), and the latest day's opportunity scores and assignment for the conversion model.

The sensor polls the registry (one alias lookup per watched model and tick), keeps the last seen
versions in its cursor, and requests one run per move (the ``run_key`` counts moves, so a
rollback to a version seen before rebuilds again, and one move is never rebuilt twice).
"""

from __future__ import annotations

import json

import dagster as dg

from assets.features._shared import daily
from recstack import names
from resources.mlflow_tracking import MlflowResource

# Model -> (job rebuilding what is built from it, the run config that makes it build from the champion).
REBUILDS: dict[str, tuple[str, dict]] = {
    names.ALS_MODEL: (
        names.REBUILD_ALS_JOB,
        {
            "ops": {
                names.ALS_USER_VECTORS: {"config": {"from_alias": names.CHAMPION}},
                names.ALS_ITEM_VECTORS: {"config": {"from_alias": names.CHAMPION}},
            }
        },
    ),
    names.CONVERSION_MODEL: (names.RESCORE_OPPORTUNITIES_JOB, {}),
}
# Jobs over daily partitions: the rebuild is of the latest day.
PARTITIONED_JOBS = {names.RESCORE_OPPORTUNITIES_JOB}

rescore_opportunities = dg.define_asset_job(
    names.RESCORE_OPPORTUNITIES_JOB,
    selection=dg.AssetSelection.assets(names.OPPORTUNITY_SCORES, names.OPPORTUNITY_ASSIGNMENT),
    partitions_def=daily,
    description="Rescore the day's opportunities and redo the assignment with the conversion champion",
)

rebuild_als_serving = dg.define_asset_job(
    names.REBUILD_ALS_JOB,
    selection=dg.AssetSelection.assets(
        names.ALS_USER_VECTORS,
        names.ALS_ITEM_VECTORS,
        names.FAISS_INDEX_ALS_USERS,
        names.FAISS_INDEX_ALS_ITEMS,
        names.MILVUS_COLLECTION_ALS_ITEMS,
        names.LOOKALIKE_AUDIENCES,
    ),
    description="Rebuild the ALS vectors, indexes, Milvus collection and audiences from the current champion",
)


# Model -> the asset whose latest materialization records (``model_version``) which version is served.
SERVED_FROM: dict[str, str] = {
    names.ALS_MODEL: names.ALS_ITEM_VECTORS,
    names.CONVERSION_MODEL: names.OPPORTUNITY_SCORES,
}


def served_versions(instance: dg.DagsterInstance) -> dict[str, str]:
    """``model -> version`` the served vectors were built from, per their latest materialization."""
    out = {}
    for model, key in SERVED_FROM.items():
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        md = event.asset_materialization.metadata if event and event.asset_materialization else {}
        if "model_version" in md:
            out[model] = str(md["model_version"].value)
    return out


def champion_moves(seen: dict[str, str], current: dict[str, str | None]) -> list[tuple[str, str]]:
    """``(model, version)`` for every watched model whose champion differs from what was seen."""
    return [(m, v) for m, v in current.items() if v is not None and seen.get(m) != v]


@dg.sensor(
    jobs=[rebuild_als_serving, rescore_opportunities],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rebuilds indexes when a model's `champion` alias moves (policy, MLflow UI, API or CLI)",
)
def champion_alias_sensor(context: dg.SensorEvaluationContext, mlflow_tracking: MlflowResource):
    # First tick: what is served now counts as seen, so starting the sensor (or `make ui` after
    # `make run`) rebuilds nothing unless the served vectors are not from the champion.
    state = (
        json.loads(context.cursor)
        if context.cursor
        else {"seen": served_versions(context.instance), "moves": 0}
    )
    current = {m: mlflow_tracking.alias_version(m, names.CHAMPION) for m in REBUILDS}
    moves = champion_moves(state["seen"], current)
    for model, version in moves:
        state["moves"] += 1
        job, run_config = REBUILDS[model]
        context.log.info("%s champion is now v%s: requesting %s", model, version, job)
        yield dg.RunRequest(
            run_key=f"{model}-champion-v{version}-move{state['moves']}",
            job_name=job,
            partition_key=daily.get_last_partition_key() if job in PARTITIONED_JOBS else None,
            run_config=run_config,
            tags={"recstack/model": model, "recstack/champion_version": version},
        )
    if not moves:
        yield dg.SkipReason(f"no champion moved ({', '.join(f'{m} v{v}' for m, v in current.items())})")
    state["seen"] = {m: v for m, v in current.items() if v is not None}
    context.update_cursor(json.dumps(state))
