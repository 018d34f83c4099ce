"""Opportunity aggregation and LibSVM export with a stable, append-only feature index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from assets.features.dictionary import Entry
from assets.features.layers import output_columns
from assets.features.warehouse_config import WarehouseConfig

NON_FEATURES = ("opp_id", "owner", "label")

MODEL_FEATURES_DIR = Path(__file__).with_name("data") / "model_features"


def opportunity_links(opps: pd.DataFrame, config: WarehouseConfig) -> pd.DataFrame:
    """``opp_id, entity_id, dim``: each opportunity's entities through every dimension's ``link``
    column (a list column such as ``user_ids``, or one id such as ``owner``)."""
    parts = []
    for d in config.dimensions:
        if d.link not in opps.columns:
            raise ValueError(
                f"dimension {d.name!r} links through column {d.link!r}, not in the opportunities"
            )
        part = (
            opps[["opp_id", d.link]].explode(d.link).rename(columns={d.link: "entity_id"}).assign(dim=d.name)
        )
        parts.append(part)
    return pd.concat(parts).dropna(subset=["entity_id"])


def aggregate_to_opportunities(
    app: pd.DataFrame,
    opps: pd.DataFrame,
    entries: list[Entry],
    config: WarehouseConfig,
    lines: tuple[str, ...],
) -> pd.DataFrame:
    """Roll entity features up to opportunities through their linked entities.

    Each derived column (of ``lines``) is aggregated over the opportunity's entities of the
    column's dim (:func:`opportunity_links`) by the entry's ``agg_rule`` (NaNs skipped; an
    opportunity with no such entity gets NaN).
    """
    links = opportunity_links(opps, config)[["opp_id", "entity_id"]]
    joined = links.merge(app, on="entity_id", how="inner")
    out = pd.DataFrame({"opp_id": opps["opp_id"]})
    by_rule: dict[str, list[str]] = {}
    for e, _, _, _, name in output_columns(entries, lines):
        by_rule.setdefault(e.agg_rule, []).append(name)
    parts = [joined.groupby("opp_id")[cols].agg(rule) for rule, cols in by_rule.items()]
    agg = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=pd.Index([], name="opp_id"))
    all_cols = [c[-1] for c in output_columns(entries, lines)]
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
    return "".join(
        json.dumps({"id": i, "label": int(l), "features": {k: v for k, v in r.items() if v == v and v != 0}})
        + "\n"
        for i, l, r in zip(ids, labels, recs)
    )


def load_model_features(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def subset_index(selected: list[str], full_index: dict[str, int]) -> dict[str, int]:
    """A model's own dense index (1..k in the file's order), checked against the full index."""
    unknown = [s for s in selected if s not in full_index]
    if unknown:
        raise ValueError(f"model feature list names features not in the full index: {unknown[:5]}")
    return {s: i for i, s in enumerate(selected, start=1)}


def opportunity_samples(
    feats: pd.DataFrame,
    owners: pd.DataFrame,
    snapshot: pd.DataFrame,
    entries: list[Entry],
    lines: tuple[str, ...],
    label_column: str = "converted",
    require_activity: bool = True,
) -> pd.DataFrame:
    """Training samples: ``opp_id, owner, label`` and every derived feature.

    ``owners`` is the owner as of the day (``opp_id, owner``); the label comes from
    ``snapshot[label_column]``. With ``require_activity``, an opportunity whose entities have no
    COUNT value above 0 in any window (no activity at all) is dropped.
    """
    if label_column not in snapshot.columns:
        raise ValueError(
            f"label column {label_column!r} not in the opportunity snapshot ({list(snapshot.columns)})"
        )
    fcols = [c for c in feats.columns if c != "opp_id"]
    out = feats.merge(owners[["opp_id", "owner"]], on="opp_id", how="left").merge(
        snapshot[["opp_id", label_column]].rename(columns={label_column: "label"}), on="opp_id"
    )
    if require_activity:
        counts = [
            name
            for _e, _l, func, _w, name in output_columns(entries, lines)
            if func == "COUNT" and name in out.columns
        ]
        out = out[out[counts].fillna(0).sum(axis=1) > 0]
    return out[["opp_id", "owner", "label", *fcols]].reset_index(drop=True)


@dataclass
class LibsvmExport:
    """The files of one day's export (relative path -> text) and its feature index."""

    files: dict[str, str]
    index: dict[str, int]
    added: dict[str, int]
    stats: dict


def libsvm_export(
    samples: pd.DataFrame, index: dict[str, int], model_lists: dict[str, list[str]], day: str
) -> LibsvmExport:
    """LibSVM for ``samples`` (see :func:`opportunity_samples`) over the append-only ``index``.

    Writes ``libsvm/<day>/full.libsvm`` + ``full.index.tsv`` (``idx<TAB>name``) and, per model
    feature list, ``<model>.libsvm`` remapped to the model's own 1..k index and
    ``<model>.index.tsv`` (``model idx<TAB>name<TAB>full idx``). Also the same data as JSON lines'
    size, for the size comparison.
    """
    fcols = [c for c in samples.columns if c not in NON_FEATURES]
    new_index = extend_index(index, fcols)
    added = {k: v for k, v in new_index.items() if k not in index}
    labels = samples["label"].to_numpy()
    base = f"libsvm/{day}"
    full = to_libsvm(labels, samples[fcols], new_index)
    files = {
        f"{base}/full.libsvm": full,
        f"{base}/full.index.tsv": "".join(
            f"{v}\t{k}\n" for k, v in sorted(new_index.items(), key=lambda kv: kv[1])
        ),
    }
    models = {}
    for name, sel in sorted(model_lists.items()):
        sub = subset_index(sel, new_index)
        text = to_libsvm(labels, samples[sel], sub)
        files[f"{base}/{name}.libsvm"] = text
        files[f"{base}/{name}.index.tsv"] = "".join(f"{i}\t{n}\t{new_index[n]}\n" for n, i in sub.items())
        models[name] = {"features": len(sel), "bytes": len(text.encode())}
    jsonl_bytes = len(to_jsonl(samples["opp_id"], labels, samples[fcols]).encode())
    stats = {
        "rows": len(labels),
        "features": len(fcols),
        "index_size": len(new_index),
        "index_added": len(added),
        "full_bytes": len(full.encode()),
        "jsonl_bytes": jsonl_bytes,
        "models": models,
    }
    return LibsvmExport(files, new_index, added, stats)


def model_feature_lists(folder: Path = MODEL_FEATURES_DIR) -> dict[str, list[str]]:
    """Every ``<model>.txt`` feature list in ``folder``."""
    return {p.stem: load_model_features(p) for p in sorted(folder.glob("*.txt"))}
