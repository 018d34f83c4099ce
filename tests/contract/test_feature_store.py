"""One contract for every FeatureStore backend.

Backends: ``embedded`` (SQLite), ``hbase-thrift`` (HBaseStore → real happybase → Thrift wire →
the test gateway from happybase's own Hbase.thrift → an embedded store), and ``hbase-live`` when
``RECSTACK_TEST_HBASE_HOST`` (and optionally ``RECSTACK_TEST_HBASE_PORT``) name a real HBase
Thrift server.
"""

import time
import uuid

import pytest

from recstack import settings
from resources.feature_store.base import FamilySpec, TableSpec, salted_rowkey, stable_int64
from resources.feature_store.embedded import EmbeddedStore

BACKENDS = ["embedded", "hbase-thrift", "hbase-live"]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    if request.param == "embedded":
        s = EmbeddedStore(tmp_path / "fs.sqlite")
        yield s
        s.close()
    elif request.param == "hbase-thrift":
        from resources.feature_store.hbase import HBaseStore
        from tests.support.thrift_gateway import ThriftGateway

        backing = EmbeddedStore(tmp_path / "gw.sqlite")
        with ThriftGateway(backing) as gw:
            yield HBaseStore("127.0.0.1", gw.port, table_prefix="recstack_test")
        backing.close()
    else:
        host = settings.env("RECSTACK_TEST_HBASE_HOST")
        if not host:
            pytest.skip(
                "no live HBase: set RECSTACK_TEST_HBASE_HOST to a Thrift server "
                "to run the contract against it"
            )
        from resources.feature_store.hbase import HBaseStore

        s = HBaseStore(
            host,
            int(settings.env("RECSTACK_TEST_HBASE_PORT", "9090")),
            table_prefix=f"rt{uuid.uuid4().hex[:6]}",
        )
        yield s
        for t in s.tables():
            s.drop_table(t)


NOW = int(time.time() * 1000)
SPEC = TableSpec(
    "events",
    (FamilySpec("d", max_versions=3), FamilySpec("m", max_versions=1, ttl_seconds=3600), FamilySpec("tag")),
)


@pytest.fixture
def table(store):
    store.create_table(SPEC)
    return store


def test_create_is_idempotent_and_spec_roundtrips(table):
    table.create_table(SPEC)
    assert "events" in table.tables()
    spec = table.table_spec("events")
    assert spec.family("d").max_versions == 3 and spec.family("m").ttl_seconds == 3600
    assert spec.family("tag").ttl_seconds is None


def test_same_cell_written_twice_converges(table):
    # Offline and real-time writers produce the same qualifier and timestamp: last write wins.
    table.put_cells("events", [(b"r1", b"d:call_01_20240508101358_108", b'{"src":"offline"}', NOW)])
    table.put_cells("events", [(b"r1", b"d:call_01_20240508101358_108", b'{"src":"realtime"}', NOW)])
    got = table.row("events", b"r1", versions=5)
    assert got == {b"d:call_01_20240508101358_108": [(b'{"src":"realtime"}', NOW)]}


def test_versions_are_bounded_and_newest_first(table):
    table.put_cells("events", [(b"r1", b"d:x", str(i).encode(), NOW - 1000 * (5 - i)) for i in range(5)])
    got = table.row("events", b"r1", columns=[b"d:x"], versions=10)[b"d:x"]
    assert [v for v, _ in got] == [b"4", b"3", b"2"]
    assert table.row("events", b"r1")[b"d:x"][0][0] == b"4"


def test_time_range_reads(table):
    table.put_cells("events", [(b"r1", b"d:x", b"old", NOW - 10_000), (b"r1", b"d:x", b"new", NOW)])
    assert table.row("events", b"r1", ts_max=NOW)[b"d:x"] == [(b"old", NOW - 10_000)]
    assert table.row("events", b"r1", ts_min=NOW - 5000, versions=3)[b"d:x"] == [(b"new", NOW)]
    assert dict(table.scan("events", ts_max=NOW))[b"r1"][b"d:x"] == (b"old", NOW - 10_000)
    assert list(table.scan("events", ts_min=NOW + 1)) == []


def test_multi_get_is_the_newest_cell_of_each_row(table):
    table.put_cells(
        "events",
        [
            (b"r1", b"d:x", b"old", NOW - 10_000),
            (b"r1", b"d:x", b"new", NOW),
            (b"r1", b"d:y", b"y", NOW - 20_000),
            (b"r2", b"d:x", b"r2", NOW - 1000),
            (b"r3", b"m:stale", b"gone", NOW - 7_200_000),  # past the m family's TTL
        ],
    )
    got = table.rows("events", [b"r1", b"r2", b"r3", b"nobody", b"r1"])
    assert got == {
        b"r1": {b"d:x": (b"new", NOW), b"d:y": (b"y", NOW - 20_000)},
        b"r2": {b"d:x": (b"r2", NOW - 1000)},
    }
    # The same answer as one row() each; a time range drops what falls outside it.
    assert got[b"r1"] == {c: v[0] for c, v in table.row("events", b"r1").items()}
    assert table.rows("events", [b"r1", b"r2"], columns=[b"d:y"]) == {b"r1": {b"d:y": (b"y", NOW - 20_000)}}
    assert table.rows("events", [b"r1", b"r2"], ts_min=NOW - 500) == {b"r1": {b"d:x": (b"new", NOW)}}
    assert table.rows("events", []) == {}


def test_ttl_hides_expired_cells(table):
    table.put_cells("events", [(b"r1", b"m:fresh", b"1", NOW), (b"r1", b"m:stale", b"1", NOW - 7_200_000)])
    assert set(table.row("events", b"r1")) == {b"m:fresh"}
    assert set(dict(table.scan("events"))[b"r1"]) == {b"m:fresh"}


def test_scan_prefix_range_columns_limit(table):
    rows = [f"{p}{i}".encode() for p in ("a", "b", "c") for i in range(3)]
    table.put_cells("events", [(r, b"d:x", r, NOW) for r in rows] + [(r, b"m:y", b"m", NOW) for r in rows])
    assert [r for r, _ in table.scan("events", row_prefix=b"b")] == [b"b0", b"b1", b"b2"]
    assert [r for r, _ in table.scan("events", row_start=b"a2", row_stop=b"b1")] == [b"a2", b"b0"]
    assert [r for r, _ in table.scan("events", limit=4)] == rows[:4]
    only_m = dict(table.scan("events", row_prefix=b"c", columns=[b"m"]))
    assert all(set(c) == {b"m:y"} for c in only_m.values())
    only_x = dict(table.scan("events", row_prefix=b"c", columns=[b"d:x"]))
    assert only_x[b"c1"] == {b"d:x": (b"c1", NOW)}


def test_target_population_tag_filter(table):
    table.put_cells("events", [(r, b"d:x", b"v", NOW) for r in (b"u1", b"u2", b"u3")])
    table.put_cells("events", [(b"u1", b"tag:pop", b"1", NOW), (b"u3", b"tag:pop", b"0", NOW)])
    got = dict(table.scan("events", columns=[b"d"], tag=b"tag:pop"))
    assert list(got) == [b"u1"] and set(got[b"u1"]) == {b"d:x"}


def test_deletes(table):
    table.put_cells(
        "events",
        [
            (b"r1", b"d:a", b"1", NOW),
            (b"r1", b"d:b", b"1", NOW),
            (b"r1", b"m:c", b"1", NOW),
            (b"r2", b"d:a", b"1", NOW),
        ],
    )
    table.delete("events", b"r1", [b"d:a"])
    assert set(table.row("events", b"r1")) == {b"d:b", b"m:c"}
    table.delete("events", b"r1", [b"d"])
    assert set(table.row("events", b"r1")) == {b"m:c"}
    table.delete("events", b"r1")
    assert table.row("events", b"r1") == {}
    assert table.row("events", b"r2") != {}


def test_unknown_family_rejects_whole_batch(table):
    with pytest.raises(ValueError, match="no column family 'zz'"):
        table.put_cells("events", [(b"ok", b"d:x", b"1", NOW), (b"bad", b"zz:x", b"1", NOW)])
    assert table.row("events", b"ok") == {}


def test_rowkey_helpers():
    k = salted_rowkey("user_42")
    assert k.endswith(b"user_42") and len(k) == len(b"user_42") + 2 and k == salted_rowkey("user_42")
    assert 0 <= stable_int64("user_42") < 2**63 and stable_int64("user_42") == stable_int64("user_42")
    assert len({salted_rowkey(f"u{i}")[:2] for i in range(500)}) > 100  # salts spread
