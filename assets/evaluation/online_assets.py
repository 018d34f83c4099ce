"""Online metrics from the service's impression and feedback logs."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from assets.evaluation.online import COLUMNS, online_metrics_table
from resources.event_log import EventLogResource


class OnlineMetricsConfig(dg.Config):
    """The days of traffic read, ending today (UTC)."""

    days: int = 7


@dg.asset(kinds={"pandas"})
def online_metrics(
    context: dg.AssetExecutionContext, config: OnlineMetricsConfig, event_log: EventLogResource
) -> dg.Output[pd.DataFrame]:
    """CTR and conversion rate per endpoint, model and version over the last ``days`` of served
    traffic: the service's impressions joined to the clicks and conversions posted to
    ``/v1/feedback`` by ``request_id`` and item (empty until there is traffic). A policy's online
    rule reads it when the champion and a challenger have both served."""
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=i)).isoformat() for i in range(config.days)]
    impressions, feedback = event_log.read("impressions", days), event_log.read("feedback", days)
    table, unmatched = online_metrics_table(impressions, feedback)
    if unmatched:
        context.log.warning("%d feedback event(s) name no served impression", unmatched)
    return dg.Output(
        table.reindex(columns=COLUMNS),
        metadata={
            "rows": len(table),
            "days": f"{days[-1]} .. {days[0]}",
            "impressions": int(table["impressions"].sum()) if len(table) else 0,
            "feedback_events": len(feedback),
            "unmatched_feedback": unmatched,
            "table": dg.MetadataValue.md(
                table.to_markdown(index=False, floatfmt=".4f") if len(table) else "no traffic"
            ),
        },
    )
