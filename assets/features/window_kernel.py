"""The window kernel: statistics of daily feature values over trailing windows, vectorised.

Input is the sparse per-entity matrix (features × days) in coordinate form: one *effective*
(present) value per ``(group, offset)``, where ``group`` numbers an (entity, feature, line)
series and ``offset`` counts days back from the partition day (0 = that day). A window of ``w``
days covers offsets ``0 .. w-1``. Over the effective values ``x_1..x_n`` in the window:

==============  ===================================================================================
COUNT           n (days with a value); 0 for an empty window
SUM             Σx; 0 for an empty window
MAX, MIN        largest / smallest value
MAXPARTITION    offset (days before the partition day) of the maximum; ties → the most recent day
MEAN            Σx / n
MEDIAN          middle value; the mean of the two middle values when n is even
STD             population standard deviation √(Σ(x-mean)²/n); 0 for a single value
RANGE           MAX − MIN
MODE            most frequent value; ties → the smallest such value
==============  ===================================================================================

Every function but COUNT and SUM is NaN for an empty window. One sort serves every window and
every function, which is what makes it fast; the Spark path calls this same function per shard.
"""

from __future__ import annotations

import numpy as np

FUNCS = ("COUNT", "SUM", "MAX", "MIN", "MAXPARTITION", "MEAN", "MEDIAN", "STD", "RANGE", "MODE")


def window_stats(
    group: np.ndarray,
    offset: np.ndarray,
    value: np.ndarray,
    n_groups: int,
    windows,
    funcs=FUNCS,
) -> dict[tuple[str, int], np.ndarray]:
    """Compute ``funcs`` over ``windows`` for every group.

    Parameters
    ----------
    group : ndarray of int, shape (n,)
        Series index in ``[0, n_groups)`` of each value.
    offset : ndarray of int, shape (n,)
        Days before the partition day (``>= 0``); at most one value per ``(group, offset)``.
    value : ndarray of float, shape (n,)
        The effective values (finite).
    n_groups : int
        Number of series; groups with no value get the empty-window results.
    windows : sequence of int
        Window lengths in days (offsets ``0 .. w-1``); any positive integers.
    funcs : sequence of str
        Names from :data:`FUNCS`.

    Returns
    -------
    dict
        ``{(func, window): ndarray of float64, shape (n_groups,)}``.
    """
    funcs = [f.upper() for f in funcs]
    bad = sorted(set(funcs) - set(FUNCS))
    if bad:
        raise ValueError(f"unknown window function(s) {bad}; known: {list(FUNCS)}")
    group = np.asarray(group, dtype=np.int64)
    offset = np.asarray(offset, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    # Sort by group, then value ascending, then offset descending: inside a group's block the
    # last element is the maximum at its most recent day, the first the minimum, the middle the median.
    order = np.lexsort((-offset, value, group))
    g, o, v = group[order], offset[order], value[order]
    out: dict[tuple[str, int], np.ndarray] = {}
    for w in windows:
        m = o < w
        gw, ow, vw = g[m], o[m], v[m]
        res = {f: (np.zeros(n_groups) if f in ("COUNT", "SUM") else np.full(n_groups, np.nan)) for f in funcs}
        if gw.size:
            starts = np.flatnonzero(np.r_[True, gw[1:] != gw[:-1]])
            ends = np.r_[starts[1:], gw.size]
            cnt = ends - starts
            ug = gw[starts]
            need = set(funcs)
            s = np.add.reduceat(vw, starts) if need & {"SUM", "MEAN", "STD"} else None
            mean = s / cnt if s is not None else None
            if "COUNT" in need:
                res["COUNT"][ug] = cnt
            if "SUM" in need:
                res["SUM"][ug] = s
            if "MAX" in need:
                res["MAX"][ug] = vw[ends - 1]
            if "MIN" in need:
                res["MIN"][ug] = vw[starts]
            if "RANGE" in need:
                res["RANGE"][ug] = vw[ends - 1] - vw[starts]
            if "MAXPARTITION" in need:
                res["MAXPARTITION"][ug] = ow[ends - 1]
            if "MEAN" in need:
                res["MEAN"][ug] = mean
            if "MEDIAN" in need:
                res["MEDIAN"][ug] = (vw[starts + (cnt - 1) // 2] + vw[starts + cnt // 2]) / 2
            if "STD" in need:
                dev = vw - np.repeat(mean, cnt)
                res["STD"][ug] = np.sqrt(np.add.reduceat(dev * dev, starts) / cnt)
            if "MODE" in need:
                res["MODE"][ug] = _mode(gw, vw, starts)
        for f in funcs:
            out[(f, w)] = res[f]
    return out


def _mode(gw: np.ndarray, vw: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Most frequent value per group block (blocks sorted by value); ties → smallest value."""
    run_starts = np.flatnonzero(np.r_[True, (gw[1:] != gw[:-1]) | (vw[1:] != vw[:-1])])
    run_len = np.diff(np.r_[run_starts, gw.size])
    first_run = np.searchsorted(run_starts, starts)  # each group's first run
    best = np.maximum.reduceat(run_len, first_run)
    run_group = np.searchsorted(starts, run_starts, side="right") - 1
    cand = np.flatnonzero(run_len == best[run_group])
    # Runs are in ascending value order inside a group: the first candidate is the smallest value.
    _, first = np.unique(run_group[cand], return_index=True)
    return vw[run_starts[cand[first]]]


def column_name(feature: str, line: str, func: str, window: int) -> str:
    """Output column of one derived feature, e.g. ``call_cnt_01_SUM_7d``."""
    return f"{feature}_{line}_{func}_{window}d"
