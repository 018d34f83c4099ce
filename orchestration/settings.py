"""Process-wide settings read from the environment (the one place that does so)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def deployment() -> str:
    """``local`` (embedded engines, the default) or ``prod``: from ``RECSTACK_DEPLOYMENT``."""
    d = os.environ.get("RECSTACK_DEPLOYMENT", "local").strip().lower()
    if d not in ("local", "prod"):
        raise ValueError(f"RECSTACK_DEPLOYMENT must be 'local' or 'prod', not {d!r}")
    return d


def home() -> Path:
    """All local state lives here (``RECSTACK_HOME``, default ``<repo>/.recstack``)."""
    return Path(os.environ.get("RECSTACK_HOME", REPO_ROOT / ".recstack")).absolute()
