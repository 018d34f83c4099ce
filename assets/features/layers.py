"""Pure logic of the warehouse layers: raw → DWD cells → MID cells → APP window table, and SCD2.

Everything here takes and returns plain values, DataFrames and cell lists; the assets move them
in and out of the feature store.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from assets.features.dictionary import Entry
from assets.features.warehouse_config import MID_AGGS, WarehouseConfig
from assets.features.window_kernel import column_name, window_stats
from assets.ingest.crm import RAW_COLUMNS
from resources.feature_store.base import FamilySpec, TableSpec, entity_of, salted_rowkey

OPEN_END = "99991231"
DAY_MS = 86_400_000
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_DWD_Q = re.compile(rb"^d:([a-z]+)_(\d{2})_(\d{14})_([^#]+)(?:#\d+)?$")
_MID_Q = re.compile(rb"^m:([a-z]+_[a-z]+)_(\d{2})_(\d{8})$")


def table_specs(
    mid_ttl_days: int = 540, mid_versions: int = 1, dwd_ttl_days: int = 540
) -> dict[str, TableSpec]:
    """The warehouse tables and their family settings (TTL and VERSIONS from config)."""
    return {
        "dwd_events": TableSpec("dwd_events", (FamilySpec("d", 1, dwd_ttl_days * 86400),)),
        "mid_daily": TableSpec(
            "mid_daily", (FamilySpec("m", mid_versions, mid_ttl_days * 86400), FamilySpec("t", 1))
        ),
        "app_features": TableSpec("app_features", (FamilySpec("a", 1, mid_ttl_days * 86400),)),
        "scd_opportunity_owner": TableSpec("scd_opportunity_owner", (FamilySpec("h", 1),)),
        "feature_dictionary": TableSpec("feature_dictionary", (FamilySpec("f", 1),)),
        "feature_index": TableSpec("feature_index", (FamilySpec("i", 1),)),
        # One cell per dated conversion (ts = the conversion day): the labels' source.
        "opportunity_conversions": TableSpec("opportunity_conversions", (FamilySpec("c", 1),)),
    }


def day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


# -- raw events ------------------------------------------------------------------------------
def bad_raw_rows(df: pd.DataFrame, config: WarehouseConfig, max_report: int = 5) -> list[str]:
    """Reasons the raw events cannot be loaded, each naming the offending row(s); the known event types,
    lines and their dimensions come from the warehouse ``config``."""
    missing = [c for c in RAW_COLUMNS if c not in df.columns]
    if missing:
        return [f"missing column(s) {missing}"]
    problems = []

    def report(mask, what):
        idx = np.flatnonzero(np.asarray(mask))
        if idx.size:
            rows = ", ".join(f"row {i} (event_id={df['event_id'].iloc[i]})" for i in idx[:max_report])
            problems.append(
                f"{idx.size} row(s) with {what}: {rows}" + (" …" if idx.size > max_report else "")
            )

    event_dims = config.event_dims
    report(~df["feature"].isin(list(event_dims)), f"unknown feature (known: {list(event_dims)})")
    report(~df["line"].astype(str).isin(config.lines), f"unknown business line (known: {list(config.lines)})")
    report(
        ~df["event_ts"].astype(str).str.match(_TS_RE)
        | pd.to_datetime(df["event_ts"], errors="coerce", utc=True).isna(),
        "malformed event_ts (want yyyy-mm-ddThh:mm:ssZ)",
    )
    report(
        df["entity_id"].isna() | df["entity_id"].astype(str).str.strip().isin(["", "nan", "None"]),
        "missing entity_id",
    )
    # An event's id is what makes a second delivery the same event (build_dwd keeps one).
    report(
        df["event_id"].isna() | df["event_id"].astype(str).str.strip().isin(["", "nan", "None"]),
        "missing event_id",
    )
    vals = pd.to_numeric(df["value"], errors="coerce")
    report(vals.isna() | ~np.isfinite(vals.fillna(0)), "non-numeric value")
    report(vals < 0, "negative value (counts and durations are >= 0)")
    expected_dim = df["feature"].map(event_dims)
    report(expected_dim.notna() & (df["entity_type"] != expected_dim), "entity_type not matching the feature")
    return problems


# -- DWD ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DwdBatch:
    """The DWD cells of a batch of raw events, and what building them decided.

    ``redeliveries`` counts rows dropped because their ``event_id`` was already in the batch (the
    same event delivered twice: the last delivery wins). ``collisions`` counts distinct events
    that share their base qualifier with another event of the batch and were kept under a
    ``#k`` suffix.
    """

    cells: list[tuple[bytes, bytes, bytes, int]]
    events_in: int
    redeliveries: int
    collisions: int


def build_dwd(events: pd.DataFrame) -> DwdBatch:
    """One cell per distinct event: qualifier ``{feature}_{line}_{yyyyMMddHHmmss}_{value}``, ts = event time
    (ms).

    The rule (README, "Identical cells"):

    * the same ``event_id`` delivered twice is one event; the later row of the batch wins;
    * two *distinct* events that build the same qualifier (same entity, feature, line, second
      and value) both survive: ranked by ``event_id``, the first keeps the plain qualifier and
      the k-th other gets ``…_{value}#k``. :func:`parse_dwd` reads the suffix, so the MID
      counts see both events.

    A real-time writer that applies this function to the same events builds identical cells, so
    whichever writes last overwrites the other: offline and real-time converge.
    """
    n_in = len(events)
    ev = events.drop_duplicates("event_id", keep="last") if n_in else events
    if ev.empty:
        return DwdBatch([], n_in, n_in - len(ev), 0)
    ts = pd.to_datetime(ev["event_ts"], utc=True)
    ms = (ts.astype("int64") // 1_000_000).to_numpy()
    values = pd.to_numeric(ev["value"]).to_numpy(np.float64)
    dt = ts.dt  # yyyyMMddHHmmss by arithmetic: strftime costs more than the rest of the build
    stamp = (
        (dt.year * 10_000 + dt.month * 100 + dt.day).astype("int64") * 1_000_000
        + dt.hour * 10_000
        + dt.minute * 100
        + dt.second
    ).astype(str)
    base = (
        "d:"
        + ev["feature"].astype(str)
        + "_"
        + ev["line"].astype(str)
        + "_"
        + stamp
        + "_"
        + pd.Series(values, index=ev.index).map(value_texts(values))
    )
    keyed = pd.DataFrame(
        {
            "entity": ev["entity_id"].astype(str).to_numpy(),
            "base": base.to_numpy(),
            "event_id": ev["event_id"].astype(str).to_numpy(),
        }
    )
    rank = keyed.groupby(["entity", "base"])["event_id"].rank(method="first").to_numpy(np.int64) - 1
    qual = np.where(rank > 0, keyed["base"] + "#" + rank.astype(str), keyed["base"])
    rowkey = {e: salted_rowkey(e) for e in keyed["entity"].unique()}
    # The body is {"event_id": …, **detail} in compact JSON; each distinct detail is parsed once.
    details = ev["detail"].where(
        ev["detail"].notna(), ""
    )  # an empty CSV cell reads as NaN, which is no dict key
    rest = {d: _detail_tail(d) for d in details.unique()}
    cells = [
        (rowkey[ent], q.encode(), ('{"event_id":' + json.dumps(eid) + rest[d]).encode(), int(t))
        for ent, q, eid, d, t in zip(keyed["entity"], qual, keyed["event_id"], details, ms)
    ]
    return DwdBatch(cells, n_in, n_in - len(ev), int((rank > 0).sum()))


def value_text(v: float) -> str:
    """A value as DWD qualifiers print it: ``%g`` of its shortest decimal form rounded half-up to
    six significant digits.

    Python's ``%g`` rounds the exact binary value instead; the two differ only where the shortest
    form ends in a 5 at the seventh digit (0.1234565 → "0.123457" here, "0.123456" in C). The
    Spark path prints with Java's ``%g``, which is this definition, so both build the same bytes.
    """
    d = Decimal(repr(float(v)))
    if not d.is_finite() or d == 0 or len(d.as_tuple().digits) <= 6:
        return f"{v:g}"
    r = d.quantize(Decimal(1).scaleb(d.adjusted() - 5), rounding=ROUND_HALF_UP)
    return f"{float(r):g}"  # r has six digits: its nearest double prints back as r


def value_texts(values: np.ndarray) -> dict[float, str]:
    """:func:`value_text` of each distinct value (values repeat: counts, whole seconds)."""
    return {v: value_text(v) for v in np.unique(values).tolist()}


def _detail_tail(detail) -> str:
    """``,"k":v…}``: the detail's fields after the event id (a field named event_id is dropped)."""
    d = json.loads(detail) if isinstance(detail, str) and detail else {}
    d.pop("event_id", None)
    body = json.dumps(d, separators=(",", ":"))
    return "}" if body == "{}" else "," + body[1:]


def dwd_cells(events: pd.DataFrame) -> list[tuple[bytes, bytes, bytes, int]]:
    """The cells of :func:`build_dwd` alone."""
    return build_dwd(events).cells


def dwd_frame(cells: list[tuple[bytes, bytes, bytes, int]]) -> pd.DataFrame:
    """The DWD cells as the ``dwd_events`` suite sees them: ``rowkey``, ``qualifier``, ``ts``."""
    return pd.DataFrame(
        {
            "rowkey": [row.decode() for row, _col, _val, _ts in cells],
            "qualifier": [col.decode() for _row, col, _val, _ts in cells],
            "ts": np.array([ts for *_, ts in cells], dtype=np.int64),
        }
    )


def parse_dwd(rows) -> pd.DataFrame:
    """DWD scan results → ``entity_id, feature, line, value`` rows."""
    out = []
    for row, cells in rows:
        ent = entity_of(row)
        for col in cells:
            m = _DWD_Q.match(col)
            if m:
                out.append((ent, m.group(1).decode(), m.group(2).decode(), float(m.group(4))))
    return pd.DataFrame(out, columns=["entity_id", "feature", "line", "value"])


# -- MID ----------------------------------------------------------------------------------------
def mid_daily_values(dwd: pd.DataFrame, config: WarehouseConfig) -> pd.DataFrame:
    """Per entity, event type and line: the day's MID base features, each event type's configured
    aggregations (``cnt``: events, ``sum``: the values' sum, ``max``: the largest value)."""
    if dwd.empty:
        return pd.DataFrame(columns=["entity_id", "mid_feature", "line", "value"])
    g = (
        dwd.groupby(["entity_id", "feature", "line"])["value"]
        .agg(cnt="size", sum="sum", max="max")
        .reset_index()
    )
    long = g.melt(
        id_vars=["entity_id", "feature", "line"],
        value_vars=list(MID_AGGS),
        var_name="agg",
        value_name="value",
    )
    long["mid_feature"] = long["feature"] + "_" + long["agg"]
    long = long[long["mid_feature"].isin(config.mid_features)]
    return (
        long[["entity_id", "mid_feature", "line", "value"]]
        .astype({"value": "float64"})
        .reset_index(drop=True)
    )


def mid_cells(
    mid: pd.DataFrame, day: date, targets: dict[str, str], tags: tuple[bytes, ...]
) -> list[tuple[bytes, bytes, bytes, int]]:
    """MID cells (qualifier ``{feature}_{line}_{yyyyMMdd}``, ts = the day) and target-population tags.

    ``targets`` maps entity id → dim for the entities the APP layer computes; each gets every tag
    in ``tags`` (one per computation: ``t:target_{task}``) and its ``t:dim``.
    """
    ts, stamp = day_ms(day), f"{day:%Y%m%d}"
    cells = [
        (salted_rowkey(e), f"m:{f}_{l}_{stamp}".encode(), repr(float(v)).encode(), ts)
        for e, f, l, v in zip(mid["entity_id"], mid["mid_feature"], mid["line"], mid["value"])
    ]
    for e, dim in targets.items():
        cells += [(salted_rowkey(e), tag, b"1", ts) for tag in tags]
        cells.append((salted_rowkey(e), b"t:dim", dim.encode(), ts))
    return cells


def parse_mid(rows, day: date) -> tuple[pd.DataFrame, dict[str, str]]:
    """MID scan results → long ``entity_id, mid_feature, line, offset, value`` and entity → dim."""
    out, dims = [], {}
    for row, cells in rows:
        ent = entity_of(row)
        d = cells.get(b"t:dim")
        if d is not None:
            dims[ent] = d[0].decode()
        for col, (v, _) in cells.items():
            m = _MID_Q.match(col)
            if m:
                off = (day - datetime.strptime(m.group(3).decode(), "%Y%m%d").date()).days
                out.append((ent, m.group(1).decode(), m.group(2).decode(), off, float(v)))
    return pd.DataFrame(out, columns=["entity_id", "mid_feature", "line", "offset", "value"]), dims


# -- APP: window features -------------------------------------------------------------------------
def output_columns(entries: list[Entry], lines: tuple[str, ...]) -> list[tuple[Entry, str, str, int, str]]:
    """Every derived column: ``(entry, line, func, window, name)`` in a stable order."""
    return [
        (e, l, f, w, column_name(e.name, l, f, w))
        for e in entries
        for l in lines
        for w in e.windows
        for f in e.funcs
    ]


def compute_window_table(
    long: pd.DataFrame, entities: pd.DataFrame, entries: list[Entry], lines: tuple[str, ...]
) -> pd.DataFrame:
    """The APP window-feature table; the one function the single-node path and every Spark shard call.

    Parameters
    ----------
    long : DataFrame
        MID values: ``entity_id, mid_feature, line, offset, value`` with ``offset >= 0`` (days
        before the partition day).
    entities : DataFrame
        ``entity_id``, ``dim``: one output row each.
    entries : list of Entry
        The feature dictionary's window entries (what to compute, over which windows).
    lines : sequence of str
        The business lines.

    Returns
    -------
    DataFrame
        One row per entity, one column per dictionary-derived feature (NaN where a feature does
        not apply to the entity's dim).
    """
    cols = output_columns(entries, lines)
    ents = entities.reset_index(drop=True)
    n = len(ents)
    pos = pd.Index(ents["entity_id"])
    srcs = sorted({e.data_src for e in entries})
    src_idx = {s: i for i, s in enumerate(srcs)}
    line_idx = {l: i for i, l in enumerate(lines)}
    lg = long[long["entity_id"].isin(pos) & long["mid_feature"].isin(srcs) & long["line"].isin(lines)]
    grp = (pos.get_indexer(lg["entity_id"]) * len(srcs) + lg["mid_feature"].map(src_idx).to_numpy()) * len(
        lines
    ) + lg["line"].map(line_idx).to_numpy()
    n_groups = n * len(srcs) * len(lines)
    funcs = sorted({f for e in entries for f in e.funcs})
    windows = sorted({w for e in entries for w in e.windows})
    stats = window_stats(
        grp.astype(np.int64), lg["offset"].to_numpy(), lg["value"].to_numpy(), n_groups, windows, funcs
    )
    dims = ents["dim"].to_numpy()
    data = {"entity_id": ents["entity_id"].to_numpy(), "dim": dims}
    base = np.arange(n) * len(srcs)
    for e, l, f, w, name in cols:
        g = (base + src_idx[e.data_src]) * len(lines) + line_idx[l]
        v = stats[(f, w)][g].astype(np.float64)
        v[dims != e.dim] = np.nan
        data[name] = v
    return pd.DataFrame(data)


def app_cells(table: pd.DataFrame, day: date) -> list[tuple[bytes, bytes, bytes, int]]:
    """APP-layer cells (one per non-NaN derived value), ts = the partition day."""
    ts = day_ms(day)
    feat_cols = [c for c in table.columns if c not in ("entity_id", "dim")]
    vals = table[feat_cols].to_numpy()
    qual = [f"a:{c}".encode() for c in feat_cols]
    cells = []
    for i, ent in enumerate(table["entity_id"]):
        rk = salted_rowkey(ent)
        row = vals[i]
        for j in np.flatnonzero(~np.isnan(row)):
            cells.append((rk, qual[j], repr(float(row[j])).encode(), ts))
    return cells


# -- SCD2 (zipper) ---------------------------------------------------------------------------------
def scd2_merge(
    history: pd.DataFrame, snapshot: pd.DataFrame, day: date, key: str, attrs: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge today's snapshot into a zipper history.

    History rows: ``key, *attrs, start, end`` (``yyyyMMdd``; ``end`` exclusive, ``99991231`` open).
    Returns ``(closed, opened)``: open rows to close at ``day`` and new open rows starting ``day``.
    Re-running the latest day with the same snapshot changes nothing (idempotent); days must be
    merged in order.
    """
    d = f"{day:%Y%m%d}"
    history = history.reindex(columns=[key, *attrs, "start", "end"])  # an empty history has no attr columns
    open_rows = history[history["end"] == OPEN_END]
    cur = snapshot.merge(open_rows, on=key, how="left", suffixes=("", "_old"))
    changed = cur["start"].isna() | np.logical_or.reduce([cur[a] != cur[f"{a}_old"] for a in attrs])
    stale = cur[changed & cur["start"].notna() & (cur["start"] != d)]
    closed = (
        stale[[key, *[f"{a}_old" for a in attrs], "start"]]
        .rename(columns={f"{a}_old": a for a in attrs})
        .assign(end=d)
    )
    same_day = cur[changed & (cur["start"] == d)]  # corrected snapshot for the same day: replace in place
    opened = pd.concat([cur[changed & (cur["start"].isna() | (cur["start"] != d))], same_day])[
        [key, *attrs]
    ].assign(start=d, end=OPEN_END)
    return closed.reset_index(drop=True), opened.reset_index(drop=True)


def scd2_as_of(history: pd.DataFrame, day: date) -> pd.DataFrame:
    """The rows valid on ``day`` (``start <= day < end``)."""
    d = f"{day:%Y%m%d}"
    return history[(history["start"] <= d) & (history["end"] > d)].reset_index(drop=True)


def scd2_cells(rows: pd.DataFrame, key: str, attrs: list[str]) -> list[tuple[bytes, bytes, bytes, int]]:
    """Zipper rows as cells: row = salted key, qualifier ``h:{start}``, value = JSON of the interval."""
    return [
        (
            salted_rowkey(r[key]),
            f"h:{r['start']}".encode(),
            json.dumps({**{a: r[a] for a in attrs}, "start": r["start"], "end": r["end"]}).encode(),
            0,
        )
        for r in rows.to_dict("records")
    ]


def parse_scd2(rows, key: str) -> pd.DataFrame:
    out = [{key: entity_of(row), **json.loads(v)} for row, cells in rows for _, (v, _) in cells.items()]
    return pd.DataFrame(out) if out else pd.DataFrame(columns=[key, "start", "end"])


def day_range(day: date, days: int) -> tuple[int, int]:
    """``[day - days + 1, day + 1)`` in ms: the history a ``days``-long window needs."""
    return day_ms(day - timedelta(days=days - 1)), day_ms(day + timedelta(days=1))
