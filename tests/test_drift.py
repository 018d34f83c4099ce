"""Drift arithmetic: PSI from stored profiles, relative change, and how far vectors moved."""

import numpy as np
import pandas as pd
import pytest

from assets.common.drift import (
    LEVELS,
    column_profiles,
    column_psi,
    probe_snapshot,
    psi,
    relative_change,
    snapshot_shift,
)


def _profile(x):
    return column_profiles(pd.DataFrame({"x": x}))["x"]


def test_psi_is_small_for_the_same_population_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    refs = [_profile(rng.normal(0, 1, 5000)) for _ in range(7)]
    same = psi(refs, _profile(rng.normal(0, 1, 5000)))
    shifted = psi(refs, _profile(rng.normal(0.5, 1, 5000)))
    wider = psi(refs, _profile(rng.normal(0, 2, 5000)))
    assert same < 0.1 and shifted > 0.25 and wider > 0.25, (same, shifted, wider)  # < 0.1: "no shift"


def test_psi_by_hand_on_a_two_bin_profile():
    rng = np.random.default_rng(3)
    # Reference: half zeros, half ones -> every interior level is 0 or 1; edges {0, 1}.
    ref = _profile(np.r_[np.zeros(50), np.ones(50)])
    # Bins: (<=0], (0, 1], (1, inf): reference shares .5 (level .5 at 0), .5, 0 (floored).
    cur = np.r_[np.zeros(20), np.ones(80)]
    want = (0.2 - 0.5) * np.log(0.2 / 0.5) + (0.8 - 0.5) * np.log(0.8 / 0.5)
    assert psi([ref], _profile(cur)) == pytest.approx(want, abs=0.02)
    # A zero-inflated count keeps its mass at zero: the same population scores ~0.
    counts = np.r_[np.zeros(900), np.arange(1, 101)]
    assert psi([_profile(counts)], _profile(counts)) < 0.01
    # Small counts that vary a little from day to day are one population: no alarm.
    days = [_profile(rng.poisson(1.2, 800)) for _ in range(7)]
    assert psi(days, _profile(rng.poisson(1.2, 800))) < 0.1
    assert psi(days, _profile(rng.poisson(2.5, 800))) > 0.25


def test_column_psi_covers_the_profiled_columns_only_and_ignores_nan():
    rng = np.random.default_rng(1)
    day = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500), "c": ["x"] * 500})
    prof = column_profiles(day)
    assert set(prof) == {"a", "b"} and len(prof["a"]) == len(LEVELS)
    cur = day.assign(a=day["a"] + 3, b=np.where(rng.random(500) < 0.1, np.nan, day["b"]))
    got = column_psi([prof], column_profiles(cur))
    assert set(got) == {"a", "b"} and got["a"] > 1 and got["b"] < 0.05


def test_relative_change():
    assert relative_change(150, [100, 100, None]) == pytest.approx(0.5)
    assert relative_change(5, []) is None and relative_change(5, [0, 0]) is None


def test_a_rotation_keeps_every_neighbour_and_a_shuffle_keeps_none():
    rng = np.random.default_rng(2)
    ids = np.arange(1000, 1300)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    snap = probe_snapshot(ids, x)
    assert len(snap["ids"]) == 50 and all(
        len(n) == 10 and i not in n for i, n in zip(snap["ids"], snap["neighbours"])
    )
    assert probe_snapshot(ids[::-1], x[::-1])["ids"] == snap["ids"]  # the same probes, whatever the order
    same = snapshot_shift(snap, ids, x)
    assert same["top10_overlap"] == pytest.approx(1.0) and same["mean_cosine_shift"] == pytest.approx(
        0, abs=1e-4
    )
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    rot = snapshot_shift(snap, ids, (x @ q).astype(np.float32))
    assert rot["top10_overlap"] == pytest.approx(1.0) and rot["mean_cosine_shift"] > 0.5
    shuffled = snapshot_shift(snap, ids[::-1], x)  # every id now holds another's vector
    assert shuffled["top10_overlap"] < 0.2 and shuffled["probes"] == 50
    gone = snapshot_shift(snap, ids[:0], x[:0])
    assert gone["probes"] == 0


def test_a_version_of_another_dimension_has_no_cosine_shift_but_an_overlap():
    rng = np.random.default_rng(4)
    ids, x = np.arange(200), rng.normal(size=(200, 4)).astype(np.float32)
    wider = np.hstack([x, np.zeros((200, 4), np.float32)])  # same neighbours, twice the rank
    shift = snapshot_shift(probe_snapshot(ids, x), ids, wider)
    assert shift["top10_overlap"] == pytest.approx(1.0) and np.isnan(shift["mean_cosine_shift"])
