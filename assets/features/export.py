"""Opportunity aggregation and LibSVM export with a stable, append-only feature index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from assets.features.dictionary import Entry
from assets.features.layers import output_columns

MODEL_FEATURES_DIR = Path(__file__).with_name("data") / "model_features"


def aggregate_to_opportunities(app: pd.DataFrame, opps: pd.DataFrame, entries: list[Entry]) -> pd.DataFrame:
    """Roll entity features up to opportunities through their linked user and phone ids.

    ``opps`` has ``opp_id`` and list columns ``user_ids``, ``phone_ids``. Each derived column is
    aggregated over the opportunity's entities of the column's dim by the entry's ``agg_rule``
    (NaNs skipped; an opportunity with no such entity gets NaN).
    """
    links = pd.concat([
        opps[["opp_id", "user_ids"]].explode("user_ids").rename(columns={"user_ids": "entity_id"}),
        opps[["opp_id", "phone_ids"]].explode("phone_ids").rename(columns={"phone_ids": "entity_id"}),
    ]).dropna()
    joined = links.merge(app, on="entity_id", how="inner")
    out = pd.DataFrame({"opp_id": opps["opp_id"]})
    by_rule: dict[str, list[str]] = {}
    for e, _, _, _, name in output_columns(entries):
        by_rule.setdefault(e.agg_rule, []).append(name)
    parts = [joined.groupby("opp_id")[cols].agg(rule) for rule, cols in by_rule.items()]
    agg = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=pd.Index([], name="opp_id"))
    all_cols = [c[-1] for c in output_columns(entries)]
    return out.merge(agg.reset_index(), on="opp_id", how="left").reindex(columns=["opp_id", *all_cols])


def extend_index(index: dict[str, int], names: list[str]) -> dict[str, int]:
    """Append unseen feature names (in the given order) after the current maximum; never renumber."""
    out = dict(index)
    nxt = max(out.values(), default=0) + 1
    for n in names:
        if n not in out:
            out[n] = nxt
            nxt += 1
    return out


def to_libsvm(labels: np.ndarray, features: pd.DataFrame, index: dict[str, int]) -> str:
    """LibSVM text: ``label idx:value ...`` with indices ascending; NaN and 0 are omitted."""
    cols = list(features.columns)
    idx = np.array([index[c] for c in cols])
    order = np.argsort(idx)
    idx, vals = idx[order], features.to_numpy(dtype=np.float64)[:, order]
    lines = []
    for lab, row in zip(labels, vals):
        keep = ~np.isnan(row) & (row != 0)
        lines.append(" ".join([f"{int(lab)}", *(f"{i}:{v:.6g}" for i, v in zip(idx[keep], row[keep]))]))
    return "\n".join(lines) + ("\n" if lines else "")


def to_jsonl(ids, labels, features: pd.DataFrame) -> str:
    """The same data as JSON lines (non-NaN, non-zero values), for the size comparison."""
    recs = features.to_dict("records")
    return "".join(json.dumps({"id": i, "label": int(l), "features": {k: v for k, v in r.items() if v == v and v != 0}}) + "\n"
                   for i, l, r in zip(ids, labels, recs))


def load_model_features(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def subset_index(selected: list[str], full_index: dict[str, int]) -> dict[str, int]:
    """A model's own dense index (1..k in the file's order), checked against the full index."""
    unknown = [s for s in selected if s not in full_index]
    if unknown:
        raise ValueError(f"model feature list names features not in the full index: {unknown[:5]}")
    return {s: i for i, s in enumerate(selected, start=1)}
