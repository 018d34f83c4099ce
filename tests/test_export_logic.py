"""The warehouse's export logic as plain functions: samples, the LibSVM file set, DWD frames."""

import numpy as np
import pandas as pd
import pytest

from assets.features.dictionary import load_dictionary, parse_dictionary
from assets.features.export import libsvm_export, opportunity_samples
from assets.features.layers import dwd_cells, dwd_frame, output_columns
from assets.features.warehouse_config import load_warehouse_config
from assets.ingest.crm import CrmSpec, daily_events

LAYOUT = load_warehouse_config()

ENTRIES = parse_dictionary(load_dictionary(), LAYOUT)[:2]
COLS = [c[-1] for c in output_columns(ENTRIES, LAYOUT.lines)]
COUNT = next(name for _e, _l, f, _w, name in output_columns(ENTRIES, LAYOUT.lines) if f == "COUNT")


def _feats():
    f = pd.DataFrame({"opp_id": ["o1", "o2", "o3"], **{c: np.nan for c in COLS}})
    f.loc[0, COUNT] = 2.0  # o1 has activity
    f.loc[1, COLS[-1]] = 5.0  # o2 has a non-COUNT value only: no activity by the COUNT columns
    return f


SNAP = pd.DataFrame({"opp_id": ["o1", "o2", "o3", "o4"], "converted": [0, 0, 0, 1], "line": ["01"] * 4})


def test_samples_are_the_open_opportunities_with_activity_by_the_dictionary_counts():
    owners = pd.DataFrame({"opp_id": ["o1", "o2"], "owner": ["s1", "s2"]})
    feats = pd.concat([_feats(), pd.DataFrame({"opp_id": ["o4"], COUNT: [9.0]})], ignore_index=True)
    out = opportunity_samples(feats, owners, SNAP, ENTRIES, LAYOUT.lines, require_activity=True)
    # o2 has a non-COUNT value only; o4 has activity but has converted: nothing left to predict.
    assert out["opp_id"].tolist() == ["o1"] and list(out.columns[:3]) == ["opp_id", "owner", "line"]
    assert "label" not in out.columns  # a day's label is what happens after it
    allrows = opportunity_samples(feats, owners, SNAP, ENTRIES, LAYOUT.lines, require_activity=False)
    assert allrows["opp_id"].tolist() == ["o1", "o2", "o3"] and allrows.loc[2, "owner"] == ""
    with pytest.raises(ValueError, match="column 'line'"):
        opportunity_samples(feats, owners, SNAP.drop(columns="line"), ENTRIES, LAYOUT.lines)


def test_libsvm_export_files_index_ids_and_subsets():
    samples = opportunity_samples(
        _feats(),
        pd.DataFrame({"opp_id": [], "owner": []}),
        SNAP,
        ENTRIES,
        LAYOUT.lines,
        require_activity=False,
    ).assign(label=[1, 0, 1], feature_day="2026-02-15")
    index = {COLS[0]: 7}  # an existing index is kept, new names are appended after its maximum
    exp = libsvm_export(samples, index, {"m": [COLS[-1], COUNT]}, "2026-03-01", subfolder="train")
    assert exp.index[COLS[0]] == 7 and min(v for k, v in exp.added.items()) == 8 and COLS[0] not in exp.added
    base = "libsvm/2026-03-01/train"
    assert set(exp.files) == {
        f"{base}/{n}" for n in ("full.libsvm", "full.index.tsv", "full.ids", "m.libsvm", "m.index.tsv")
    }
    full = exp.files[f"{base}/full.libsvm"].splitlines()
    assert full[0] == f"1 {exp.index[COUNT]}:2" and full[2] == "1"  # NaN and 0 omitted
    assert exp.files[f"{base}/full.ids"].splitlines() == [f"o{i}\t2026-02-15" for i in (1, 2, 3)]
    assert exp.files[f"{base}/m.libsvm"].splitlines()[:2] == ["1 2:2", "0 1:5"]  # the model's own 1..k
    assert exp.files[f"{base}/m.index.tsv"].splitlines()[0] == f"1\t{COLS[-1]}\t{exp.index[COLS[-1]]}"
    assert exp.stats["rows"] == 3 and exp.stats["full_bytes"] < exp.stats["jsonl_bytes"]
    # A predict set has no label: every row reads 0, and the ids file has the opportunity alone.
    pred = libsvm_export(samples.drop(columns=["label", "feature_day"]), index, {}, "2026-03-01")
    assert [ln.split()[0] for ln in pred.files["libsvm/2026-03-01/full.libsvm"].splitlines()] == ["0"] * 3
    assert pred.files["libsvm/2026-03-01/full.ids"].split() == ["o1", "o2", "o3"]
    with pytest.raises(ValueError, match="not in the full index"):
        libsvm_export(samples, {}, {"bad": ["nope"]}, "d")


def test_dwd_frame_names_fields():
    cells = dwd_cells(
        daily_events(pd.Timestamp("2026-03-01").date(), LAYOUT, CrmSpec(n_users=20, n_opportunities=5))
    )
    f = dwd_frame(cells)
    assert len(f) == len(cells) and f.dtypes["ts"] == np.int64
    assert f.loc[0, "rowkey"] == cells[0][0].decode() and f.loc[0, "qualifier"] == cells[0][1].decode()
