"""Drift and volume arithmetic for the daily checks: compact column profiles, the population
stability index (PSI) of a day against the trailing days' profiles, a count against its trailing
mean, and how far a new vectors version moved its probes' neighbours.

A day keeps only its profile (per numeric column, the values at :data:`LEVELS`, taken from the
data), in its materialization metadata, so the check compares against a week without reading a
week of data; the day's own profile is compared with theirs (see :func:`psi`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LEVELS = tuple(np.round(np.linspace(0, 1, 21), 2))  # every 5 %
PSI_FLOOR = 1e-3  # a share below this counts as this (an empty bin is not an infinite shift)


def column_profiles(frame: pd.DataFrame, columns: list[str] | None = None) -> dict[str, list[float]]:
    """``column -> values at LEVELS`` of each numeric column (NaN ignored; an all-NaN column is left
    out)."""
    cols = columns if columns is not None else list(frame.select_dtypes("number").columns)
    out = {}
    for c in cols:
        x = pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64)
        x = x[np.isfinite(x)]
        if len(x):
            out[c] = [float(v) for v in np.quantile(x, LEVELS, method="inverted_cdf")]
    return out


def _cdf(profile: list[float], at: np.ndarray) -> np.ndarray:
    """A day's share at or below each value of ``at``, read from its profile: at a profile value,
    the largest level holding it (an atom keeps its mass: a count that is zero 60 % of the time
    reads 0.6 at 0); between profile values, linear; 0 below the minimum, 1 above the maximum."""
    q, lv = np.asarray(profile, np.float64), np.asarray(LEVELS)
    values, last = np.unique(q[::-1], return_index=True)
    return np.interp(at, values, lv[::-1][last], left=0.0, right=1.0)


def psi(reference: list[list[float]], current: list[float]) -> float:
    """PSI of the ``current`` day's profile against the trailing days' profiles.

    Profile against profile, each read the same way (:func:`_cdf`), so the approximation of a
    21-value summary cancels for an unchanged population. The bins are bounded by every value of
    every profile; the reference share of a bin is the mean of the days' shares.
    ``sum((cur - ref) * ln(cur / ref))`` with each share floored at :data:`PSI_FLOOR`.
    """
    if not reference or not current:
        return 0.0
    edges = np.unique(np.concatenate([np.asarray(p, np.float64) for p in (*reference, current)]))
    ref_cdf = np.mean([_cdf(p, edges) for p in reference], axis=0)
    ref = np.diff(np.concatenate([[0.0], ref_cdf, [1.0]]))
    cur = np.diff(np.concatenate([[0.0], _cdf(current, edges), [1.0]]))
    ref, cur = np.maximum(ref, PSI_FLOOR), np.maximum(cur, PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def column_psi(reference: list[dict[str, list[float]]], current: dict[str, list[float]]) -> dict[str, float]:
    """PSI of every column both the current profile and a reference day profiled."""
    cols = sorted({c for day in reference for c in day} & set(current))
    return {c: psi([day[c] for day in reference if c in day], current[c]) for c in cols}


def relative_change(current: float, trailing: list[float]) -> float | None:
    """``current / mean(trailing) - 1``; ``None`` without a trailing mean to compare against."""
    vals = [float(v) for v in trailing if v is not None]
    if not vals or np.mean(vals) == 0:
        return None
    return float(current) / float(np.mean(vals)) - 1.0


def probe_ids(ids: np.ndarray, n: int = 50) -> np.ndarray:
    """``n`` ids picked by a fixed hash of the id, so consecutive versions probe the same ids while
    they exist."""
    ids = np.asarray(ids, np.int64)
    h = (ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return ids[np.argsort(h, kind="stable")[:n]]


def probe_snapshot(ids: np.ndarray, vecs: np.ndarray, n: int = 50, k: int = 10) -> dict:
    """What the next version is compared against: the probes' ids, their top-``k`` neighbour ids
    (inner product, itself excluded) and their vectors (rounded), small enough for metadata."""
    from assets.common.topk import batched_topk

    ids, vecs = np.asarray(ids, np.int64), np.asarray(vecs, np.float32)
    probes = probe_ids(ids, n)
    row = {int(i): r for r, i in enumerate(ids)}
    pv = vecs[[row[int(p)] for p in probes]]
    pos = batched_topk(pv, vecs, k + 1)[0]
    neighbours = [[int(ids[j]) for j in r if j >= 0 and ids[j] != p][:k] for p, r in zip(probes, pos)]
    return {
        "ids": [int(p) for p in probes],
        "neighbours": neighbours,
        "vectors": np.round(pv, 5).tolist(),
    }


def snapshot_shift(previous: dict, ids: np.ndarray, vecs: np.ndarray, k: int = 10) -> dict[str, float]:
    """How far a new version moved from ``previous`` (:func:`probe_snapshot`): over the probes
    still present, the mean overlap of each one's top-``k`` neighbours with its previous ones, and
    the mean cosine shift ``1 - cos(old, new)`` of its vector. The overlap is what the service
    feels; the cosine shift is meaningful when the versions share a space (an incremental
    update) and near 1 after a retraining, whose space rotates."""
    from assets.common.topk import batched_topk

    ids, vecs = np.asarray(ids, np.int64), np.asarray(vecs, np.float32)
    row = {int(i): r for r, i in enumerate(ids)}
    keep = [j for j, p in enumerate(previous["ids"]) if int(p) in row]
    if not keep:
        return {"probes": 0, "top10_overlap": float("nan"), "mean_cosine_shift": float("nan")}
    probes = [int(previous["ids"][j]) for j in keep]
    pv = vecs[[row[p] for p in probes]]
    pos = batched_topk(pv, vecs, k + 1)[0]
    overlap = []
    for p, r, j in zip(probes, pos, keep):
        now = {int(ids[c]) for c in r if c >= 0 and ids[c] != p}
        before = list(previous["neighbours"][j])[:k]
        overlap.append(len(now & set(before)) / max(1, min(k, len(before))))
    old = np.asarray([previous["vectors"][j] for j in keep], np.float32)
    if old.shape[1] != pv.shape[1]:  # a new dimension (another rank): no cosine between versions
        shift = float("nan")
    else:
        norms = np.maximum(np.linalg.norm(old, axis=1) * np.linalg.norm(pv, axis=1), 1e-12)
        shift = float(np.mean(1 - np.sum(old * pv, axis=1) / norms))
    return {"probes": len(probes), "top10_overlap": float(np.mean(overlap)), "mean_cosine_shift": shift}
