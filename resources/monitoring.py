"""What the daily checks alert on and where alerts go: one resource, chosen per deployment."""

from __future__ import annotations

import dagster as dg


class MonitoringResource(dg.ConfigurableResource):
    """Drift and volume thresholds of the warehouse and vectors checks, and the alert webhook.

    A check beyond its threshold fails as a WARN (shown in the UI, the run goes on); with
    ``blocking`` it fails as an ERROR, and the partition stops before anything downstream reads it.
    """

    psi_threshold: float = 0.25  # the usual "significant shift" line for the population stability index
    volume_tolerance: float = 0.5  # |count / trailing mean - 1| above this is a volume anomaly
    label_rate_tolerance: float = 0.5  # the same, for the label rate of the day's samples
    min_neighbour_overlap: float = 0.5  # a new vectors version keeping less of each top-10 moved
    trailing_days: int = 7
    min_history: int = 3  # fewer trailing days than this: the check passes, saying so
    blocking: bool = False
    webhook_url: str = ""  # alerts POST a JSON payload here; empty: no alerts
    dagster_ui_url: str = "http://127.0.0.1:3000"  # the run links in the payload

    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN
