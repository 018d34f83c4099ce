"""The versioned store: publish-by-pointer, crash safety, idempotence, no foreign classes."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from assets.embeddings.factor_model import FactorModel
from resources.storage import VersionedStore


def test_roundtrip_kinds(tmp_path):
    s = VersionedStore(str(tmp_path))
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    s.write(["t", "df"], None, df)
    pd.testing.assert_frame_equal(s.read(["t", "df"]), df)
    tbl = pa.table({"id": pa.array([1, 2], pa.int64())})
    s.write(["t", "arrow"], "2024-01-01", tbl)
    assert s.read(["t", "arrow"], "2024-01-01").equals(tbl)
    s.write(["t", "json"], None, {"k": [1, 2]})
    assert s.read(["t", "json"]) == {"k": [1, 2]}
    fm = FactorModel(np.array([1, 2]), np.ones((2, 3), np.float32), np.array([5]), np.zeros((1, 3), np.float32), {"rank": 3})
    s.write(["m"], None, fm)
    back = s.read(["m"])
    assert isinstance(back, FactorModel) and back.params == {"rank": 3}
    np.testing.assert_array_equal(back.user_factors, fm.user_factors)


def test_crash_mid_write_keeps_previous_version(tmp_path, monkeypatch):
    s = VersionedStore(str(tmp_path))
    good = pd.DataFrame({"v": [1]})
    s.write(["a"], None, good)

    def boom(*a, **k):
        raise OSError("disk died mid-write")

    monkeypatch.setattr("pyarrow.parquet.write_table", boom)
    with pytest.raises(OSError):
        s.write(["a"], None, pd.DataFrame({"v": [2]}))
    pd.testing.assert_frame_equal(s.read(["a"]), good)


def test_rewrite_is_idempotent_and_keeps_two_versions(tmp_path):
    s = VersionedStore(str(tmp_path))
    df = pd.DataFrame({"v": [1, 2, 3]})
    manifests = [s.write(["a"], "p", df.assign(v=df.v + i)) for i in range(20)]  # many within one second
    pd.testing.assert_frame_equal(s.read(["a"], "p"), df.assign(v=df.v + 19))
    versions = sorted(p.name for p in (tmp_path / "a" / "p").iterdir() if p.is_dir())
    assert versions == [m["version"] for m in manifests[-2:]]  # the two newest survive, in order
    assert json.loads((tmp_path / "a" / "p" / "CURRENT").read_text())["rows"] == 3


def test_refuses_unknown_classes_and_missing(tmp_path):
    s = VersionedStore(str(tmp_path))

    class Foreign:
        def save(self, p):
            pass

        @classmethod
        def load(cls, p):
            return cls()

    with pytest.raises(TypeError, match="only RecStack classes"):
        s.write(["x"], None, Foreign())
    with pytest.raises(FileNotFoundError, match="no published version"):
        s.read(["nothing"])
    (tmp_path / "evil" / "_").mkdir(parents=True)
    (tmp_path / "evil" / "_" / "CURRENT").write_text(json.dumps({"version": "v", "kind": "object", "cls": "os.system"}))
    with pytest.raises(TypeError, match="refusing"):
        s.read(["evil"])
