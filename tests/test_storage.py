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
    fm = FactorModel(
        np.array([1, 2]),
        np.ones((2, 3), np.float32),
        np.array([5]),
        np.zeros((1, 3), np.float32),
        {"rank": 3},
    )
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
    (tmp_path / "evil" / "_" / "CURRENT").write_text(
        json.dumps({"version": "v", "kind": "object", "cls": "os.system"})
    )
    with pytest.raises(TypeError, match="refusing"):
        s.read(["evil"])


def _object_store(tmp_path) -> VersionedStore:
    """The store over pyarrow's in-memory filesystem: the object-store code path (S3 in production),
    with no S3. ``local`` is False, so objects go through a local temp folder and ``copy_files``."""
    import pyarrow.fs as pafs

    s = VersionedStore(str(tmp_path))
    s.fs, s.base, s.local = pafs._MockFileSystem(), "bucket/root", False
    return s


def test_the_object_store_path_roundtrips_and_collects(tmp_path):
    s = _object_store(tmp_path)
    assert s.current(["a"]) is None and s.path_of(["a"]) is None
    df = pd.DataFrame({"v": [1, 2]})
    manifests = [s.write(["a"], "p", df.assign(v=df.v + i), {"run_id": f"r{i}"}) for i in range(3)]
    pd.testing.assert_frame_equal(s.read(["a"], "p"), df.assign(v=df.v + 2))
    assert s.current(["a"], "p") == {**manifests[-1], "run_id": "r2"} and manifests[-1]["rows"] == 2
    assert s.path_of(["a"], "p") == f"bucket/root/a/p/{manifests[-1]['version']}"
    import pyarrow.fs as pafs

    dirs = sorted(
        i.base_name
        for i in s.fs.get_file_info(pafs.FileSelector("bucket/root/a/p"))
        if i.type == pafs.FileType.Directory
    )
    assert dirs == [m["version"] for m in manifests[-2:]]
    s.write(["j"], None, [1, "x"])
    assert s.read(["j"]) == [1, "x"]
    fm = FactorModel(
        np.array([1, 2]),
        np.ones((2, 3), np.float32),
        np.array([5]),
        np.zeros((1, 3), np.float32),
        {"rank": 3},
    )
    s.write(["m"], None, fm)
    back = s.read(["m"])
    assert isinstance(back, FactorModel) and back.params == {"rank": 3} and back.item_ids.tolist() == [5]
    np.testing.assert_array_equal(back.user_factors, fm.user_factors)


def test_stale_pointers_of_crashed_writers_are_removed_and_bad_objects_refused(tmp_path):
    s = VersionedStore(str(tmp_path))
    s.write(["a"], None, {"v": 1})
    stale = tmp_path / "a" / "_" / "CURRENT.20200101T000000.000000000-dead00.tmp"
    stale.write_text("{}")
    m = s.write(["a"], None, {"v": 2})
    assert not stale.exists() and s.read(["a"]) == {"v": 2}
    assert sorted(p.name for p in (tmp_path / "a" / "_").iterdir()) == sorted(
        [*(p.name for p in (tmp_path / "a" / "_").iterdir() if p.is_dir()), "CURRENT"]
    )
    assert m["kind"] == "json" and "rows" not in m
    with pytest.raises(TypeError, match="cannot store set"):
        s.write(["b"], None, {1, 2})
    assert s.current(["b"]) is None  # nothing published for a refused object


def test_the_io_manager_publishes_with_metadata_and_loads_partitions(tmp_path):
    import dagster as dg

    from resources.storage import VersionedIOManager

    parts = dg.StaticPartitionsDefinition(["a", "b"])

    @dg.asset(partitions_def=parts)
    def table(context) -> pd.DataFrame:
        return pd.DataFrame({"p": [context.partition_key] * 3})

    @dg.asset
    def nothing() -> None:
        return None

    @dg.asset(ins={"table": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
    def both(table) -> dict:
        return {k: len(v) for k, v in table.items()}

    io = VersionedIOManager(root=str(tmp_path))
    for p in ("a", "b"):
        r = dg.materialize([table], partition_key=p, resources={"io_manager": io})
        md = r.asset_materializations_for_node("table")[0].metadata
        assert md["rows"].value == 3 and md["storage_path"].value.endswith(md["storage_version"].value)
    r = dg.materialize([table, nothing, both], selection=[nothing, both], resources={"io_manager": io})
    assert r.output_for_node("both") == {"a": 3, "b": 3}
    assert VersionedStore(str(tmp_path)).read(["both"]) == {"a": 3, "b": 3}
    assert VersionedStore(str(tmp_path)).current(["nothing"]) is None  # None is not stored
    assert VersionedStore(str(tmp_path)).read(["table"], "b")["p"].tolist() == ["b"] * 3


def test_a_table_input_annotated_as_a_dataset_comes_by_reference(tmp_path):
    """An asset that reads a table itself (Spark) gets its Parquet file, not the rows."""
    import dagster as dg
    import pandas as pd

    from resources.storage import ParquetDataset, VersionedIOManager

    frame = pd.DataFrame({"user_id": [3, 1, 2], "item_id": [7, 8, 9], "confidence": [1.0, 2.0, 3.0]})
    seen = {}

    @dg.asset
    def table() -> pd.DataFrame:
        return frame

    @dg.asset
    def reader(table: ParquetDataset) -> None:
        seen["ds"] = table

    res = dg.materialize([table, reader], resources={"io_manager": VersionedIOManager(root=str(tmp_path))})
    assert res.success
    ds = seen["ds"]
    assert isinstance(ds, ParquetDataset) and ds.rows == 3 and ds.uri.endswith("/data.parquet")
    assert ds.uri.startswith(str(tmp_path)) and ds.version in ds.uri
    pd.testing.assert_frame_equal(ds.to_pandas(), frame)
    again = ParquetDataset.write(frame, tmp_path / "again.parquet")
    assert again.content_hash() == ds.content_hash() and len(ds.content_hash()) == 12
    changed = ParquetDataset.write(frame.assign(confidence=[1.0, 2.0, 4.0]), tmp_path / "changed.parquet")
    assert changed.content_hash() != ds.content_hash()
