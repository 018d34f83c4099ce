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

NON_FEATURES = ("feature_day", "opp_id", "owner", "line", "label")

MODEL_FEATURES_DIR = Path(__file__).with_name("data") / "model_features"
# Under the export root: the lists models learned (a champion's high-gain features).
LEARNED_FEATURES_DIR = "model_features"


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
    require_activity: bool = True,
) -> pd.DataFrame:
    """The day's samples: ``opp_id, owner, line`` and every derived feature, for each opportunity
    still open on the day (``converted`` 0: a converted one has nothing left to predict).

    ``owners`` is the owner as of the day (``opp_id, owner``; empty when unassigned). No label:
    it is what happens after the day (:mod:`assets.features.labels`). With ``require_activity``,
    an opportunity whose entities have no COUNT value above 0 in any window is dropped.
    """
    for col in ("converted", "line"):
        if col not in snapshot.columns:
            raise ValueError(f"column {col!r} not in the opportunity snapshot ({list(snapshot.columns)})")
    fcols = [c for c in feats.columns if c != "opp_id"]
    open_ = snapshot.loc[snapshot["converted"].astype(float) == 0, ["opp_id", "line"]]
    out = feats.merge(open_, on="opp_id").merge(owners[["opp_id", "owner"]], on="opp_id", how="left")
    out["owner"] = out["owner"].fillna("").astype(str)
    if require_activity:
        counts = [
            name
            for _e, _l, func, _w, name in output_columns(entries, lines)
            if func == "COUNT" and name in out.columns
        ]
        out = out[out[counts].fillna(0).sum(axis=1) > 0]
    return out[["opp_id", "owner", "line", *fcols]].reset_index(drop=True)


@dataclass
class LibsvmExport:
    """The files of one day's export (relative path -> text) and its feature index."""

    files: dict[str, str]
    index: dict[str, int]
    added: dict[str, int]
    stats: dict


def libsvm_export(
    samples: pd.DataFrame,
    index: dict[str, int],
    model_lists: dict[str, list[str]],
    day: str,
    subfolder: str = "",
) -> LibsvmExport:
    """LibSVM for ``samples`` (see :func:`opportunity_samples`) over the append-only ``index``.

    Writes ``libsvm/<day>[/<subfolder>]/full.libsvm`` + ``full.index.tsv`` (``idx<TAB>name``),
    ``full.ids`` (each row's ``opp_id``, and ``feature_day`` when the samples carry one, aligned
    by row) and, per model feature list, ``<model>.libsvm`` remapped to the model's own 1..k
    index and ``<model>.index.tsv`` (``model idx<TAB>name<TAB>full idx``). The label is the
    samples' ``label`` (0 for a predict set, which has none). Also the same data as JSON lines'
    size, for the size comparison.
    """
    fcols = [c for c in samples.columns if c not in NON_FEATURES]
    new_index = extend_index(index, fcols)
    added = {k: v for k, v in new_index.items() if k not in index}
    labels = samples["label"].to_numpy() if "label" in samples else np.zeros(len(samples), np.int64)
    base = f"libsvm/{day}" + (f"/{subfolder}" if subfolder else "")
    full = to_libsvm(labels, samples[fcols], new_index)
    id_cols = [c for c in ("opp_id", "feature_day") if c in samples.columns]
    files = {
        f"{base}/full.libsvm": full,
        f"{base}/full.ids": samples[id_cols].to_csv(sep="\t", index=False, header=False),
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


def model_feature_lists(
    folder: Path = MODEL_FEATURES_DIR, learned: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """Every ``<model>.txt`` feature list in ``folder`` (the hand-written ones), then each
    ``learned`` list (model name -> its file's text, as a model's training wrote it), which
    replaces a hand-written list of the same name."""
    lists = {p.stem: load_model_features(p) for p in sorted(folder.glob("*.txt"))}
    for name, text in (learned or {}).items():
        lists[name] = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return lists
