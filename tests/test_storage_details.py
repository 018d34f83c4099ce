"""The versioned store's observable details: roots given as URIs, version names, what a table,
a JSON document and a manifest keep, error texts, and the IO manager's loads and metadata."""

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.embeddings.factor_model import FactorModel
from resources.storage import VersionedIOManager, VersionedStore


def test_a_uri_root_and_a_trailing_slash_name_the_same_local_folder(tmp_path):
    s = VersionedStore(f"file://{tmp_path}/")
    assert s.local is True and s.base == str(tmp_path)
    s.write(["a"], None, {"v": 1})
    assert VersionedStore(str(tmp_path)).read(["a"]) == {"v": 1}  # the same folder as the plain path
    assert VersionedStore(f"{tmp_path}/").base == str(tmp_path)


def test_version_names_are_utc_nanoseconds_then_a_random_suffix(tmp_path, monkeypatch):
    import resources.storage as storage

    monkeypatch.setattr(storage.time, "time_ns", lambda: 1_700_000_000_123_456_789)
    m = VersionedStore(str(tmp_path)).write(["a"], None, {"v": 1})
    assert re.fullmatch(r"20231114T221320\.123456789-[0-9a-f]{6}", m["version"]), m["version"]


def test_tables_drop_the_frame_index_and_json_stringifies_what_it_cannot_encode(tmp_path):
    s = VersionedStore(str(tmp_path))
    s.write(["t"], None, pd.DataFrame({"a": [1, 2]}, index=[10, 11]))
    back = s.read(["t"])
    assert list(back.columns) == ["a"] and back.index.tolist() == [0, 1]
    s.write(["j"], None, {"when": dt.datetime(2026, 1, 2, 3, 4, 5), "path": Path("/x/y")})
    assert s.read(["j"]) == {"when": "2026-01-02 03:04:05", "path": "/x/y"}


def test_manifests_name_their_kind_and_errors_name_the_key(tmp_path):
    s = VersionedStore(str(tmp_path))
    fm = FactorModel(
        np.array([1]), np.ones((1, 2), np.float32), np.array([5]), np.zeros((1, 2), np.float32), {}
    )
    s.write(["m"], None, fm)
    assert (
        s.current(["m"])["kind"] == "object"
        and s.current(["m"])["cls"] == "assets.embeddings.factor_model.FactorModel"
    )
    with pytest.raises(FileNotFoundError, match=r"^no published version of a/b \[unpartitioned\]$"):
        s.read(["a", "b"])
    with pytest.raises(FileNotFoundError, match=r"^no published version of a/b \[2026-01-01\]$"):
        s.read(["a", "b"], "2026-01-01")

    class SaveOnly:  # save without a load: not a storable object, whatever its module
        def save(self, p):
            pass

    with pytest.raises(TypeError, match="cannot store SaveOnly"):
        s.write(["x"], None, SaveOnly())


def test_the_io_manager_records_the_run_and_path_and_loads_each_kind_of_input(tmp_path):
    parts = dg.StaticPartitionsDefinition(["a", "b"])

    @dg.asset(partitions_def=parts)
    def table(context) -> pd.DataFrame:
        return pd.DataFrame({"p": [context.partition_key] * 3})

    @dg.asset(partitions_def=parts)
    def same_partition(context, table: pd.DataFrame) -> dict:
        return {"partition": context.partition_key, "seen": table["p"].unique().tolist()}

    @dg.asset
    def settings() -> dict:
        return {"n": 7}

    @dg.asset
    def doubled(settings: dict) -> dict:
        return {"n": 2 * settings["n"]}

    io = VersionedIOManager(root=str(tmp_path))
    for p in ("a", "b"):
        r = dg.materialize([table, same_partition], partition_key=p, resources={"io_manager": io})
        md = r.asset_materializations_for_node("table")[0].metadata
        version = md["storage_version"].value
        assert md["storage_path"].value == f"{tmp_path}/table/{p}/{version}"
        assert VersionedStore(str(tmp_path)).current(["table"], p)["run_id"] == r.run_id
        assert r.output_for_node("same_partition") == {"partition": p, "seen": [p]}
    r = dg.materialize([settings, doubled], resources={"io_manager": io})
    assert r.output_for_node("doubled") == {"n": 14}
    r = dg.materialize(
        [settings, doubled], selection=[doubled], resources={"io_manager": io}
    )  # loaded from the store
    assert r.output_for_node("doubled") == {"n": 14}
