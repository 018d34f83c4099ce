"""The warehouse's daily partitions start where its data starts.

Production sets ``RECSTACK_WAREHOUSE_START`` (``yyyy-mm-dd``, the first day of event data). Locally
``make run`` records the first day it fills in ``$RECSTACK_HOME/warehouse_start`` the first time it
runs, so the Dagster UI shows the days that exist, not months of empty partitions before them.
"""

from __future__ import annotations

import os
from datetime import date

DEFAULT_START = "2026-01-01"


def warehouse_start() -> str:
    """The first daily partition: the env var, else the recorded local start, else the default."""
    if os.environ.get("RECSTACK_WAREHOUSE_START"):
        return date.fromisoformat(os.environ["RECSTACK_WAREHOUSE_START"]).isoformat()
    from orchestration.settings import home

    f = home() / "warehouse_start"
    return date.fromisoformat(f.read_text().strip()).isoformat() if f.exists() else DEFAULT_START


def record_local_start(first_day: date) -> str:
    """Record ``first_day`` as the local warehouse start unless one is recorded (or set) already."""
    from orchestration.settings import home

    f = home() / "warehouse_start"
    if not f.exists() and not os.environ.get("RECSTACK_WAREHOUSE_START"):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(first_day.isoformat())
    return warehouse_start()
