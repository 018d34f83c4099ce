"""The CRM loop's plain functions: time-aligned labels, the simulator's dated conversions, the
model's measures and the assignment rule."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from assets.features.assignment import assign, staff_affinity
from assets.features.conversion import auc, top_decile_lift
from assets.features.labels import (
    conversion_cells,
    labelled_samples,
    parse_conversions,
    time_aligned_labels,
)
from assets.ingest.crm import CrmSpec, opportunities_on

D = date(2026, 5, 10)


def _conv(pairs):
    return pd.DataFrame([(o, D + timedelta(days=k)) for o, k in pairs], columns=["opp_id", "converted_on"])


def test_label_counts_only_conversions_after_the_day_within_the_horizon():
    conv = _conv([("same_day", 0), ("next_day", 1), ("last_day", 14), ("too_late", 15), ("before", -3)])
    ids = pd.Series(["same_day", "next_day", "last_day", "too_late", "before", "never"])
    assert time_aligned_labels(ids, D, conv, 14).tolist() == [0, 1, 1, 0, 0, 0]
    assert time_aligned_labels(ids, D, conv, 1).tolist() == [0, 1, 0, 0, 0, 0]


def test_labelled_samples_refuse_a_day_whose_horizon_is_not_in():
    f = pd.DataFrame({"opp_id": ["a"], "owner": [""], "line": ["01"], "x": [1.0]})
    ok = labelled_samples({D.isoformat(): f}, _conv([("a", 3)]), 14, D + timedelta(days=14))
    assert ok[["feature_day", "opp_id", "label"]].values.tolist() == [[D.isoformat(), "a", 1]]
    with pytest.raises(ValueError, match="needs the snapshots up to"):
        labelled_samples({D.isoformat(): f}, _conv([]), 14, D + timedelta(days=13))


def test_conversion_cells_are_dated_idempotent_and_never_from_the_future():
    snap = pd.DataFrame({"opp_id": ["a", "b"], "converted_on": ["2026-05-08", ""]})
    cells = conversion_cells(snap, D)
    assert cells == conversion_cells(snap, D + timedelta(days=1))  # the same cell on a later snapshot
    rows = [(r, {q: [(v, ts)]}) for r, q, v, ts in cells]
    assert parse_conversions(rows).values.tolist() == [["a", date(2026, 5, 8)]]
    with pytest.raises(ValueError, match="after the snapshot day"):
        conversion_cells(snap, date(2026, 5, 7))


def test_simulator_conversions_are_dated_consistently_and_stationary():
    spec = CrmSpec(n_users=800, n_opportunities=600)
    snaps = {k: opportunities_on(D + timedelta(days=k), spec).set_index("opp_id") for k in range(0, 16)}
    # A conversion first shows on the snapshot of its own day (never backdated, never ahead), so
    # the snapshots after D hold every conversion after D.
    new_total = 0
    for k in range(1, 16):
        s, prev = snaps[k], snaps[k - 1]
        new = (s["converted_on"] != "") & (s["converted_on"] != prev["converted_on"])
        assert (s.loc[new, "converted_on"] == (D + timedelta(days=k)).isoformat()).all()
        assert (s.loc[new, "converted"] == 1).all()
        new_total += int(new.sum())
    assert new_total > 50
    # Any calendar day looks alike: the converted share a year later is within a few points.
    later = opportunities_on(D + timedelta(days=365 * 3), spec)
    assert abs(later["converted"].mean() - snaps[0]["converted"].mean()) < 0.06
    assert 0.05 < (snaps[0]["owner"] == "").mean() < 0.25  # some opportunities have no owner


def test_auc_and_top_decile_lift_on_known_values():
    y = np.array([0, 0, 1, 1])
    assert auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert auc(y, np.array([1, 1, 1, 1])) == 0.5  # ties count half
    assert np.isnan(auc(np.array([1, 1]), np.array([0.2, 0.3])))
    y = np.r_[np.ones(5), np.zeros(45)]
    rate, base, lift = top_decile_lift(y, np.r_[np.full(5, 0.9), np.full(45, 0.1)])
    assert (rate, base, lift) == (1.0, 0.1, 10.0)


def test_assignment_best_score_first_to_the_best_record_on_the_line_within_capacity():
    snap = pd.DataFrame(
        {
            "opp_id": ["h1", "h2", "h3", "h4", "h5", "u1", "u2", "u3", "u4"],
            "owner": ["ann", "ann", "bob", "bob", "cat", "", "", "", ""],
            "line": ["01", "01", "01", "01", "02", "01", "01", "02", "01"],
        }
    )
    aff = staff_affinity(snap, converted_opps={"h1", "h2", "h5"})
    ann = aff[(aff.owner == "ann") & (aff.line == "01")]["affinity"].item()
    assert ann == pytest.approx(3 / 4) and aff[aff.owner == "bob"]["affinity"].item() == pytest.approx(1 / 4)
    scores = snap.assign(score=[0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.7, 0.6, 0.2])
    out, left = assign(scores, aff, capacity=1)
    got = dict(zip(out["opp_id"], out["owner"]))
    # By score: u2 (0.7, line 01) -> ann (3/4 on 01); u3 (0.6, 02) -> cat (2/3 on 02); u1 (0.5, 01)
    # -> ann and cat are full, bob (1/4) is left; u4 (0.2) -> nobody has capacity.
    assert got == {"u2": "ann", "u3": "cat", "u1": "bob"} and left == 1  # u4: every capacity spent
    assert out.set_index("opp_id").loc["u2", "rank"] == 1 and out.set_index("opp_id").loc["u1", "rank"] == 2
    assert set(out["opp_id"]) <= {"u1", "u2", "u3", "u4"}  # the owned ones are never reassigned
    out, left = assign(scores, aff, capacity=5)
    assert left == 0 and set(out["owner"]) == {"ann", "cat"}  # ann takes every line-01 one
    with pytest.raises(ValueError, match="capacity"):
        assign(scores, aff, capacity=-1)


def test_holdout_split_purges_training_days_whose_labels_overlap_the_holdout():
    from assets.features.conversion import split_holdout

    days = [(D + timedelta(days=i)).isoformat() for i in range(20)]
    s = pd.DataFrame({"feature_day": days, "label": [0, 1] * 10})
    train, hold = split_holdout(s, holdout_days=2, horizon_days=14)
    assert hold["feature_day"].tolist() == days[-2:]
    # First held-out day D+18: training label windows must end by it, so days up to D+4.
    assert train["feature_day"].tolist() == days[:5]
    with pytest.raises(ValueError, match="14 days before the holdout"):
        split_holdout(s.iloc[10:], holdout_days=2, horizon_days=14)
