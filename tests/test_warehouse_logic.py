"""Warehouse logic without Dagster: dictionary, raw checks, DWD/MID cells, window table, SCD2, export."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from assets.features.dictionary import DictionaryError, load_dictionary, parse_dictionary
from assets.features.export import extend_index, subset_index, to_jsonl, to_libsvm
from assets.features.layers import (
    bad_raw_rows,
    compute_window_table,
    dwd_cells,
    mid_daily_values,
    parse_dwd,
    scd2_as_of,
    scd2_merge,
)
from assets.features.warehouse_config import load_warehouse_config
from assets.ingest.crm import CrmSpec, daily_events, population

LAYOUT = load_warehouse_config()

DAY = date(2026, 5, 1)


def entries():
    return parse_dictionary(load_dictionary(), LAYOUT)


def test_default_dictionary_parses_and_bad_rows_are_named():
    es = entries()
    assert {e.name for e in es} >= {"call_cnt", "login_cnt"}
    df = load_dictionary()
    bad = df.copy()
    bad.loc[2, "cal_sort"] = "SUM|P99"
    with pytest.raises(
        DictionaryError, match=r"dictionary row 3 \(id=3, name='login_cnt'\): unknown window function"
    ):
        parse_dictionary(bad, LAYOUT)
    ok = df.copy()
    ok.loc[0, "times"] = "3|14"  # any window up to the layout's history_days
    assert parse_dictionary(ok, LAYOUT)[0].windows == (3, 14)
    for times, bad_w in (("3|181", "[181]"), ("0|7", "[0]")):
        bad = df.copy()
        bad.loc[0, "times"] = times
        with pytest.raises(
            DictionaryError, match=rf"row 1 .*window\(s\) \{bad_w[:-1]}\] outside 1\.\.180 days"
        ):
            parse_dictionary(bad, LAYOUT)
    bad = df.copy()
    bad.loc[1, "data_src"] = "fax_cnt"
    with pytest.raises(DictionaryError, match="unknown data_src 'fax_cnt'"):
        parse_dictionary(bad, LAYOUT)


def test_raw_rows_are_checked_by_row():
    ev = daily_events(DAY, LAYOUT, CrmSpec(n_users=50, n_opportunities=20))
    assert bad_raw_rows(ev, LAYOUT) == []
    bad = ev.copy()
    bad.loc[3, "feature"] = "fax"
    bad.loc[5, "event_ts"] = "2026-05-01 25:00"
    bad.loc[7, "value"] = "lots"
    bad.loc[8, "line"] = "09"
    msgs = " | ".join(bad_raw_rows(bad, LAYOUT))
    for needle in (
        "unknown feature",
        f"row 3 (event_id={ev.event_id[3]})",
        "malformed event_ts",
        "row 5",
        "non-numeric value",
        "row 7",
        "unknown business line",
        "row 8",
    ):
        assert needle in msgs
    assert bad_raw_rows(ev.drop(columns="value"), LAYOUT) == ["missing column(s) ['value']"]


def test_dwd_cells_and_mid_values():
    ev = pd.DataFrame(
        {
            "event_id": ["a", "b", "c"],
            "entity_type": "phone",
            "entity_id": "p1",
            "feature": "call",
            "line": ["01", "01", "02"],
            "event_ts": ["2021-05-08T10:13:58Z", "2021-05-08T11:00:00Z", "2021-05-08T12:00:00Z"],
            "value": [108.0, 30.0, 5.0],
            "detail": "{}",
        }
    )
    cells = dwd_cells(ev)
    assert cells[0][1] == b"d:call_01_20210508101358_108"
    assert cells[0][3] == 1620468838000
    mid = mid_daily_values(parse_dwd([(cells[0][0], {c[1]: (c[2], c[3]) for c in cells})]), LAYOUT)
    got = {(r.mid_feature, r.line): r.value for r in mid.itertuples()}
    assert got == {
        ("call_cnt", "01"): 2,
        ("call_sum", "01"): 138,
        ("call_cnt", "02"): 1,
        ("call_sum", "02"): 5,
    }


def test_window_table_columns_and_dims():
    es = entries()
    long = pd.DataFrame(
        {
            "entity_id": ["p1", "p1", "u1"],
            "mid_feature": ["call_cnt", "call_cnt", "login_cnt"],
            "line": ["01", "01", "02"],
            "offset": [0, 5, 1],
            "value": [2.0, 4.0, 1.0],
        }
    )
    ents = pd.DataFrame({"entity_id": ["p1", "u1", "u2"], "dim": ["phone", "user", "user"]})
    t = compute_window_table(long, ents, es, LAYOUT.lines).set_index("entity_id")
    assert t.loc["p1", "call_cnt_01_SUM_3d"] == 2 and t.loc["p1", "call_cnt_01_SUM_7d"] == 6
    assert t.loc["p1", "call_cnt_01_MAXPARTITION_7d"] == 5
    assert np.isnan(t.loc["u1", "call_cnt_01_SUM_7d"])  # phone feature on a user
    assert t.loc["u2", "login_cnt_02_COUNT_30d"] == 0 and np.isnan(t.loc["u2", "login_cnt_02_MAX_30d"])


def test_adding_a_dictionary_row_adds_columns_without_code():
    df = load_dictionary()
    extra = pd.DataFrame(
        [
            {
                "dim": "user",
                "id": 99,
                "name": "post_len",
                "explain": "new",
                "cal_sort": "SUM|MAX",
                "times": "7|30",
                "data_src": "post_sum",
                "agg_rule": "max",
            }
        ]
    )
    es = parse_dictionary(pd.concat([df, extra], ignore_index=True), LAYOUT)
    long = pd.DataFrame(
        {"entity_id": ["u1"], "mid_feature": ["post_sum"], "line": ["01"], "offset": [2], "value": [3.0]}
    )
    t = compute_window_table(long, pd.DataFrame({"entity_id": ["u1"], "dim": ["user"]}), es, LAYOUT.lines)
    assert t.loc[0, "post_len_01_SUM_7d"] == 3 and "post_len_02_MAX_30d" in t.columns


def test_scd2_zipper_merge_and_as_of():
    hist = pd.DataFrame(columns=["opp_id", "owner", "start", "end"])
    snap1 = pd.DataFrame({"opp_id": ["o1", "o2"], "owner": ["s1", "s2"]})
    closed, opened = scd2_merge(hist, snap1, date(2026, 1, 1), "opp_id", ["owner"])
    assert closed.empty and len(opened) == 2
    hist = opened
    again = scd2_merge(hist, snap1, date(2026, 1, 1), "opp_id", ["owner"])
    assert again[0].empty and again[1].empty  # idempotent
    snap2 = pd.DataFrame({"opp_id": ["o1", "o2"], "owner": ["s9", "s2"]})
    closed, opened = scd2_merge(hist, snap2, date(2026, 1, 5), "opp_id", ["owner"])
    assert closed.to_dict("records") == [
        {"opp_id": "o1", "owner": "s1", "start": "20260101", "end": "20260105"}
    ]
    hist = pd.concat(
        [hist[~((hist.opp_id == "o1") & (hist.start == "20260101"))], closed, opened], ignore_index=True
    )
    assert scd2_as_of(hist, date(2026, 1, 4)).set_index("opp_id")["owner"].to_dict() == {
        "o1": "s1",
        "o2": "s2",
    }
    assert scd2_as_of(hist, date(2026, 1, 5)).set_index("opp_id")["owner"].to_dict() == {
        "o1": "s9",
        "o2": "s2",
    }


def test_feature_index_is_append_only_and_libsvm():
    idx = extend_index({}, ["b", "a"])
    assert idx == {"b": 1, "a": 2}
    idx2 = extend_index(idx, ["c", "a", "d"])
    assert idx2 == {"b": 1, "a": 2, "c": 3, "d": 4}
    feats = pd.DataFrame({"a": [1.5, np.nan], "b": [0.0, 2.0], "c": [3.0, 4.0]})
    txt = to_libsvm(np.array([1, 0]), feats, idx2)
    assert txt == "1 2:1.5 3:3\n0 1:2 3:4\n"
    assert len(txt) < len(to_jsonl(["o1", "o2"], [1, 0], feats))
    assert subset_index(["c", "a"], idx2) == {"c": 1, "a": 2}
    with pytest.raises(ValueError, match="not in the full index"):
        subset_index(["zz"], idx2)


def test_population_conversion_hazard_depends_on_engagement():
    pop = population(CrmSpec(n_users=3000, n_opportunities=3000))
    u = pop["users"].set_index("user_id")["engagement"]
    o = pop["opportunities"]
    eng = o["user_ids"].map(lambda us: u[us[0]])
    high = o["hazard"] > o["hazard"].median()
    assert eng[high].mean() > 1.5 * eng[~high].mean()


def test_window_suite_forbids_nan_counts_for_own_dim():
    from resources.validation import GreatExpectationsResource

    long = pd.DataFrame(
        {
            "entity_id": ["p1", "u1"],
            "mid_feature": ["call_cnt", "login_cnt"],
            "line": ["01", "01"],
            "offset": [0, 3],
            "value": [2.0, 1.0],
        }
    )
    t = compute_window_table(
        long,
        pd.DataFrame({"entity_id": ["p1", "p2", "u1"], "dim": ["phone", "phone", "user"]}),
        entries(),
        LAYOUT.lines,
    )
    gx = GreatExpectationsResource()
    assert gx.validate(
        t, "window_features", LAYOUT.suite_params()
    ).success  # p2 has no activity: COUNT 0, SUM 0, not NaN
    bad = t.copy()
    bad.loc[1, "call_cnt_01_COUNT_3d"] = np.nan
    msg = gx.validate(bad, "window_features", LAYOUT.suite_params()).message()
    assert "expect_column_values_to_not_be_null(call_cnt_01_COUNT_3d): 1 of 2 rows unexpected" in msg
    bad = t.copy()
    bad.loc[0, "call_cnt_01_SUM_7d"] = 0.0  # SUM over 7 days below SUM over 3 days
    assert (
        "expect_column_pair_values_a_to_be_greater_than_b"
        in gx.validate(bad, "window_features", LAYOUT.suite_params()).message()
    )
