"""What a platform engineer watches for, in the Dagster UI and by webhook.

- **Freshness.** Every daily asset has a time-partition freshness check: the day must have
  landed by :data:`DAILY_DEADLINE` (the warehouse runs at 01:30, the conversion job at 02:15).
  Every asset of the nightly recommendation slice (03:00) has a last-update check: updated
  within a day of :data:`RECOMMENDATION_DEADLINE`. A sensor evaluates them; a late day is a
  failed check on the asset's page.
- **Alerts.** :func:`run_failure_alert` posts a JSON payload for each failed run, and
  :func:`check_failure_alert` one for each failed asset check (drift, volume, freshness, suites),
  to ``MonitoringResource.webhook_url``. Nothing is posted for a success.
"""

from __future__ import annotations

import json
import urllib.request
import warnings
from datetime import timedelta

import dagster as dg

from resources.monitoring import MonitoringResource

DAILY_DEADLINE = "0 6 * * *"  # UTC: yesterday's partition of every daily asset is in by 06:00
RECOMMENDATION_DEADLINE = "0 7 * * *"  # UTC: the 03:00 slice has finished by 07:00
ALERT_TIMEOUT_S = 10.0


def freshness_checks(all_assets, daily, recommendation: dg.AssetSelection) -> list:
    """The freshness checks of every daily asset (the partition of the day before the deadline
    has landed) and of every unpartitioned asset of the recommendation slice (updated within 24
    hours before the deadline)."""
    # Dagster marks these builders superseded by FreshnessPolicy, whose evaluator is not
    # partition-aware: a daily asset's check must ask for *the day's* partition, so the checks stay.
    warnings.filterwarnings("ignore", message=r".*is superseded.*", module=__name__)
    partitions = {k: a.partitions_def for a in all_assets for k in a.keys}
    daily_keys = [k for k, p in partitions.items() if p == daily]
    slice_keys = [k for k in recommendation.resolve(all_assets) if partitions[k] is None]
    return [
        *dg.build_time_partition_freshness_checks(assets=sorted(daily_keys), deadline_cron=DAILY_DEADLINE),
        *dg.build_last_update_freshness_checks(
            assets=sorted(slice_keys),
            lower_bound_delta=timedelta(hours=24),
            deadline_cron=RECOMMENDATION_DEADLINE,
        ),
    ]


def freshness_sensor(checks: list) -> dg.SensorDefinition:
    """Evaluates the freshness checks as their deadlines pass (running by default: a late day
    must show without anyone turning it on)."""
    warnings.filterwarnings("ignore", message=r".*is superseded.*", module=__name__)
    return dg.build_sensor_for_freshness_checks(
        freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING
    )


def post_alert(url: str, payload: dict) -> None:
    """POST ``payload`` as JSON to ``url`` (an alert that cannot be delivered fails the sensor
    tick, which the UI shows, instead of vanishing)."""
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=ALERT_TIMEOUT_S) as resp:
        resp.read()


def run_link(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def run_failure_payload(run, message: str, steps: list[str], assets: list[str], ui_url: str) -> dict:
    """The alert for a failed run: its id, job, the assets it planned to materialize, the failed
    steps, the failure message and a link to the run."""
    return {
        "alert": "run_failure",
        "run_id": run.run_id,
        "job": run.job_name,
        "assets": assets,
        "failed_steps": steps,
        "partition": run.tags.get("dagster/partition"),
        "message": message,
        "link": run_link(ui_url, run.run_id),
    }


def check_failure_payload(evaluation, run_id: str, ui_url: str) -> dict:
    """The alert for a failed asset check: asset, check, severity, its description and numbers,
    and a link to the run that evaluated it."""
    md = {k: getattr(v, "value", v) for k, v in (evaluation.metadata or {}).items()}
    return {
        "alert": "check_failure",
        "run_id": run_id,
        "asset": evaluation.asset_key.to_user_string(),
        "check": evaluation.check_name,
        "severity": evaluation.severity.value,
        "partition": evaluation.partition,
        "message": evaluation.description or f"{evaluation.check_name} failed",
        "metadata": {k: v for k, v in md.items() if isinstance(v, (str, int, float, bool)) or v is None},
        "link": run_link(ui_url, run_id),
    }


def _root_cause(error) -> str:
    """The innermost error's message (Dagster wraps a step's exception in its own)."""
    while error is not None and error.cause is not None:
        error = error.cause
    return (error.message or "").strip() if error is not None else ""


@dg.run_failure_sensor(name="run_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING)
def run_failure_alert(context: dg.RunFailureSensorContext, monitoring: MonitoringResource):
    """One webhook payload per failed run."""
    if not monitoring.webhook_url:
        return dg.SkipReason("no webhook configured (RECSTACK_ALERT_WEBHOOK_URL)")
    run = context.dagster_run
    failures = context.get_step_failure_events()
    steps = [e.step_key for e in failures if e.step_key]
    errors = [_root_cause(e.step_failure_data.error) for e in failures if e.step_failure_data]
    planned = context.instance.get_records_for_run(
        run_id=run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    assets = sorted({r.event_log_entry.dagster_event.asset_key.to_user_string() for r in planned})
    post_alert(
        monitoring.webhook_url,
        run_failure_payload(
            run,
            " | ".join([context.failure_event.message or "", *errors]),
            steps,
            assets,
            monitoring.dagster_ui_url,
        ),
    )


@dg.sensor(
    name="check_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=60
)
def check_failure_alert(context: dg.SensorEvaluationContext, monitoring: MonitoringResource):
    """One webhook payload per failed asset-check evaluation since the last tick. The cursor holds
    the last execution seen per check, so a restart neither repeats nor skips one; the first tick
    only marks where to start (as Dagster's run-status sensors do). Read per check key, which
    every event-log storage supports."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    storage = context.instance.event_log_storage
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    first = not context.cursor
    sent = 0
    for key in sorted(context.repository_def.asset_graph.asset_check_keys, key=str):
        name = key.to_user_string()
        history = storage.get_asset_check_execution_history(
            key, limit=100, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        new = sorted((r for r in history if r.id > seen.get(name, 0)), key=lambda r: r.id)
        if new:
            seen[name] = new[-1].id
        if first:
            continue
        for r in new:
            if monitoring.webhook_url:
                evaluation = r.event.dagster_event.event_specific_data
                post_alert(
                    monitoring.webhook_url,
                    check_failure_payload(evaluation, r.run_id, monitoring.dagster_ui_url),
                )
                sent += 1
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return dg.SkipReason("first tick: marked where to start" if first else f"{sent} check alerts sent")
