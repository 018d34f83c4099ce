"""Online metrics: the service's impressions joined to the feedback posted on them.

An impression is one item shown in one response (``request_id``, endpoint, the model and version
that served it); feedback names a ``request_id`` and an item. CTR is clicked impressions over
impressions, conversion rate converted impressions over impressions, per endpoint, model and
version, so a challenger serving part of the traffic is compared with the champion on the same
days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recstack import names

KEYS = ["endpoint", "model", "model_version"]
COLUMNS = [*KEYS, "requests", "impressions", "clicks", "conversions", "ctr", "conversion_rate"]


def online_metrics_table(impressions: pd.DataFrame, feedback: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per endpoint, model and version: requests, impressions, clicks, conversions, CTR and
    conversion rate; and the count of feedback events that match no impression.

    Parameters
    ----------
    impressions : DataFrame
        ``request_id, endpoint, models, ids``: ``models`` maps each model that shaped the response
        to its version (``/v1/recommend`` names ALS and item2vec), ``ids`` the items shown, as
        text. Each model's versions are compared on the impressions they shaped.
    feedback : DataFrame
        ``request_id, item_id, event`` (``click`` or ``conversion``); a repeated event counts once.
    """
    if impressions.empty:
        return pd.DataFrame(columns=COLUMNS), int(len(feedback))
    per_model = impressions.assign(model=impressions["models"].map(lambda m: list(dict(m).items())))
    per_model = per_model.explode("model").dropna(subset=["model"])
    per_model["model_version"] = per_model["model"].map(lambda kv: str(kv[1]))
    per_model["model"] = per_model["model"].map(lambda kv: kv[0])
    shown = per_model[["request_id", *KEYS, "ids"]].explode("ids").dropna(subset=["ids"])
    shown = shown.rename(columns={"ids": "item_id"}).astype({"item_id": str})
    shown = shown.drop_duplicates(["request_id", "model", "item_id"])
    fb = feedback if not feedback.empty else pd.DataFrame(columns=["request_id", "item_id", "event"])
    fb = fb.astype({"item_id": str}).drop_duplicates(["request_id", "item_id", "event"])
    joined = fb.merge(
        shown[["request_id", "item_id"]], on=["request_id", "item_id"], how="left", indicator=True
    )
    unmatched = int((joined["_merge"] == "left_only").sum())
    for ev in ("click", "conversion"):
        hit = fb.loc[fb["event"] == ev, ["request_id", "item_id"]].assign(**{ev: 1})
        shown = shown.merge(hit, on=["request_id", "item_id"], how="left")
        shown[ev] = shown[ev].fillna(0).astype(np.int64)
    g = shown.groupby(KEYS).agg(
        requests=("request_id", "nunique"),
        impressions=("item_id", "size"),
        clicks=("click", "sum"),
        conversions=("conversion", "sum"),
    )
    g["ctr"] = g["clicks"] / g["impressions"]
    g["conversion_rate"] = g["conversions"] / g["impressions"]
    return g.reset_index()[COLUMNS], unmatched


def versions_online(
    table: pd.DataFrame, endpoint: str, model: str, champion: str | None, challenger: str
) -> dict | None:
    """``{champion: {...}, challenger: {...}}`` rows of ``table`` for the two versions on
    ``endpoint``, or None when either has not served there."""
    if table is None or table.empty or champion is None:
        return None
    rows = table[(table["endpoint"] == endpoint) & (table["model"] == model)].set_index("model_version")
    if str(champion) not in rows.index or str(challenger) not in rows.index:
        return None
    return {
        names.CHAMPION: rows.loc[str(champion)].to_dict(),
        names.CHALLENGER: rows.loc[str(challenger)].to_dict(),
    }
