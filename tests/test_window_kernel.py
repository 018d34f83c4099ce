"""The window kernel equals a plain-Python reference on random data (empty and 1-value windows too)."""

import math
import statistics
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.features.window_kernel import FUNCS, window_stats

WINDOWS = (3, 7, 15, 30, 90, 180, 365)  # the practice's windows and a year


def reference(values_by_offset: dict[int, float], w: int, func: str) -> float:
    """Definitions from the README, written the obvious way."""
    xs = [(o, v) for o, v in values_by_offset.items() if o < w]
    vals = [v for _, v in xs]
    if func == "COUNT":
        return float(len(vals))
    if func == "SUM":
        return float(sum(vals))
    if not vals:
        return math.nan
    if func == "MAX":
        return max(vals)
    if func == "MIN":
        return min(vals)
    if func == "MAXPARTITION":
        mx = max(vals)
        return float(min(o for o, v in xs if v == mx))
    if func == "MEAN":
        return sum(vals) / len(vals)
    if func == "MEDIAN":
        return statistics.median(vals)
    if func == "STD":
        return statistics.pstdev(vals)
    if func == "RANGE":
        return max(vals) - min(vals)
    if func == "MODE":
        c = Counter(vals)
        top = max(c.values())
        return min(v for v, n in c.items() if n == top)
    raise AssertionError(func)


series = st.dictionaries(
    st.integers(0, 400), st.sampled_from([0.0, 1.0, 2.0, 2.5, 7.0, 120.0, -3.0]), max_size=25
)


@settings(max_examples=60, deadline=None)
@given(st.lists(series, min_size=1, max_size=6))
def test_kernel_matches_reference(groups):
    g, o, v = [], [], []
    for i, d in enumerate(groups):
        for off, val in d.items():
            g.append(i), o.append(off), v.append(val)
    out = window_stats(
        np.array(g, dtype=np.int64), np.array(o, dtype=np.int64), np.array(v), len(groups), WINDOWS
    )
    for i, d in enumerate(groups):
        for w in WINDOWS:
            for f in FUNCS:
                exp, got = reference(d, w, f), out[(f, w)][i]
                assert (math.isnan(exp) and math.isnan(got)) or got == pytest.approx(exp, abs=1e-9), (f, w, d)


def test_hand_checked_window():
    # offsets 0..4 with values 5, 1, 5, 3, 9 ; window 3 sees 5, 1, 5
    out = window_stats(np.zeros(5, int), np.arange(5), np.array([5.0, 1, 5, 3, 9]), 2, windows=(3, 7))
    assert out[("COUNT", 3)].tolist() == [3, 0]
    assert out[("SUM", 3)][0] == 11 and out[("MAXPARTITION", 3)][0] == 0 and out[("MODE", 3)][0] == 5
    assert out[("MEDIAN", 7)][0] == 5 and out[("MAXPARTITION", 7)][0] == 4 and out[("RANGE", 7)][0] == 8
    assert np.isnan(out[("MEAN", 3)][1])  # empty series
    with pytest.raises(ValueError, match="unknown window function"):
        window_stats(np.zeros(1, int), np.zeros(1, int), np.ones(1), 1, (3,), funcs=["P99"])


def test_each_function_alone_equals_it_computed_with_all_the_others():
    """The kernel skips the sums when no SUM, MEAN or STD is asked for: every function asked for
    alone (or with one other) must give what the full set gives."""
    from assets.features.window_kernel import FUNCS

    rng = np.random.default_rng(4)
    n, n_groups = 400, 30
    g = rng.integers(0, n_groups, n)
    o = rng.integers(0, 40, n)
    keep = ~pd.DataFrame({"g": g, "o": o}).duplicated().to_numpy()  # one value per (group, day)
    g, o, v = g[keep], o[keep], rng.normal(size=keep.sum()).round(2) * 10
    full = window_stats(g, o, v, n_groups, windows=(7, 30))
    for funcs in [[f] for f in FUNCS] + [["MAX", "MIN"], ["COUNT", "MEDIAN"]]:
        part = window_stats(g, o, v, n_groups, windows=(7, 30), funcs=funcs)
        assert set(part) == {(f, w) for f in funcs for w in (7, 30)}
        for key, arr in part.items():
            np.testing.assert_array_equal(arr, full[key], err_msg=str(key))
