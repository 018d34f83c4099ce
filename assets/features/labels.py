"""Time-aligned conversion labels: a sample of feature day D is labelled by what happens after D.

A sample on feature day D carries features of events on or before D (the window features of D)
and label 1 when its opportunity converts in ``(D, D + horizon]``. The conversions come from
the daily snapshots (each dated conversion kept as one cell of ``opportunity_conversions``), so
the label of D is known once the snapshot of ``D + horizon`` is in; until then D is not a
training day.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from assets.features.layers import day_ms

CONVERSION_FAMILY = b"c"
SAMPLE_KEYS = ("feature_day", "opp_id", "owner", "line", "label")


def with_optional_columns(snapshot: pd.DataFrame, lines: tuple[str, ...]) -> pd.DataFrame:
    """The snapshot with ``line`` (the layout's first line when the source has none),
    ``converted_on`` (empty when the source does not date its conversions) and ``owner`` as text
    (empty when unassigned)."""
    out = snapshot.copy()
    if "line" not in out.columns:
        out["line"] = lines[0]
    if "converted_on" not in out.columns:
        out["converted_on"] = ""
    out["line"] = out["line"].astype(str)
    out["owner"] = out["owner"].fillna("").astype(str)
    out["converted_on"] = out["converted_on"].fillna("").astype(str)
    return out


def conversion_cells(snapshot: pd.DataFrame, day: date) -> list[tuple[bytes, bytes, bytes, int]]:
    """One cell per dated conversion on or before ``day``: row ``opp_id``, qualifier
    ``c:<conversion day>``, timestamp that day. Identical on every snapshot that shows it, so
    re-ingesting is idempotent."""
    conv = snapshot[snapshot["converted_on"].astype(str) != ""]
    cells = []
    for opp, on in zip(conv["opp_id"].astype(str), conv["converted_on"].astype(str)):
        d = date.fromisoformat(on[:10])
        if d > day:
            raise ValueError(f"opportunity {opp} converted_on {on} is after the snapshot day {day}")
        cells.append((opp.encode(), CONVERSION_FAMILY + b":" + d.isoformat().encode(), b"1", day_ms(d)))
    return cells


def parse_conversions(rows) -> pd.DataFrame:
    """``opp_id, converted_on`` (dates) from a scan of ``opportunity_conversions``."""
    recs = [
        (r.decode(), date.fromisoformat(q.decode().split(":", 1)[1]))
        for r, cols in rows
        for q in cols
        if q.startswith(CONVERSION_FAMILY + b":")
    ]
    return pd.DataFrame(recs, columns=["opp_id", "converted_on"])


def time_aligned_labels(
    opp_ids: pd.Series, feature_day: date, conversions: pd.DataFrame, horizon_days: int
) -> np.ndarray:
    """1 where the opportunity converts in ``(feature_day, feature_day + horizon_days]``."""
    lo, hi = feature_day, feature_day + timedelta(days=horizon_days)
    c = conversions[(conversions["converted_on"] > lo) & (conversions["converted_on"] <= hi)]
    return opp_ids.isin(set(c["opp_id"])).to_numpy().astype(np.int64)


def labelled_samples(
    features_by_day: dict[str, pd.DataFrame],
    conversions: pd.DataFrame,
    horizon_days: int,
    last_snapshot: date,
) -> pd.DataFrame:
    """Every feature day's samples (``opportunity_features``) with ``feature_day`` and a
    time-aligned ``label``; a day whose horizon ends after ``last_snapshot`` raises (its label is
    not known yet)."""
    parts = []
    for key in sorted(features_by_day):
        d = date.fromisoformat(key)
        if d + timedelta(days=horizon_days) > last_snapshot:
            raise ValueError(
                f"the label of feature day {d} needs the snapshots up to "
                f"{d + timedelta(days=horizon_days)}; the latest is {last_snapshot}"
            )
        f = features_by_day[key]
        parts.append(
            f.assign(feature_day=key, label=time_aligned_labels(f["opp_id"], d, conversions, horizon_days))
        )
    if not parts:
        return pd.DataFrame(columns=list(SAMPLE_KEYS))
    out = pd.concat(parts, ignore_index=True)
    fcols = [c for c in out.columns if c not in SAMPLE_KEYS]
    return out[[*SAMPLE_KEYS, *fcols]]
