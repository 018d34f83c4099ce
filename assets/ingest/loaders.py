"""The ingest boundary: read real files, check their shape and types, and fail with one sentence.

Every entry (interactions, CRM events, entity profiles, KB documents, the feature dictionary)
reads through :func:`read_table`, then coerces its columns with the helpers here. Anything that
cannot be loaded as given raises :class:`~resources.validation.InputError` naming the file, the
problem and the row; assets turn that into a ``dagster.Failure``. Values that parse but are
wrong (NaN, negative, duplicates) are left for the Great Expectations suites to report.

Real datasets legitimately carry string ids and ISO timestamps: ``id_mapping="stable_hash"`` and
``ts_format="iso8601"`` accept them explicitly; without the option such a file is stopped with a
message that names it (never a silent coercion).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from resources.feature_store.base import stable_int64
from resources.validation import InputError

FileFormat = Literal["auto", "csv", "parquet", "jsonl", "dat"]
IdMapping = Literal["none", "stable_hash"]
TsFormat = Literal["unix_s", "unix_ms", "iso8601"]
ConversionMethod = Literal["binary", "linear", "log"]

_SUFFIX = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".dat": "dat",
}
INT64_MAX = np.iinfo(np.int64).max
_INT_RE = r"[+-]?\d+"

# Column aliases seen in public datasets, mapped onto our names.
_ALIASES = {
    "userid": "user_id",
    "user": "user_id",
    "uid": "user_id",
    "movieid": "item_id",
    "itemid": "item_id",
    "item": "item_id",
    "movie_id": "item_id",
    "timestamp": "ts",
    "time": "ts",
    "score": "rating",
}


# -- reading ------------------------------------------------------------------------------------
def read_table(
    path: str | Path,
    fmt: FileFormat = "auto",
    dat_columns: tuple[str, ...] = ("user_id", "item_id", "rating", "ts"),
    text_columns: bool = True,
) -> pd.DataFrame:
    """Read CSV, Parquet, JSON lines or ``::``-separated text into a DataFrame.

    CSV and ``.dat`` columns come back as text (``text_columns``), so the typed coercions below
    can name the exact row of a bad value; Parquet and JSON keep their own types.

    Raises
    ------
    InputError
        Missing path, a directory, an empty file, undecodable bytes, a malformed or truncated
        line, or a file with a header and no rows.
    """
    p = Path(path)
    src = str(p)
    if not str(path):
        raise InputError("no path given", hint="set the asset config's `path`")
    if not p.exists():
        raise InputError("file not found", src)
    if p.is_dir():
        raise InputError("is a directory, not a file", src)
    if fmt == "auto":
        fmt = _SUFFIX.get(p.suffix.lower(), "csv")
    if p.stat().st_size == 0:
        raise InputError("file is empty", src)
    if fmt == "parquet":
        try:
            df = pd.read_parquet(p)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
            raise InputError(
                f"not a readable Parquet file ({type(e).__name__}: {str(e).splitlines()[0][:200]})", src
            ) from None
    else:
        text = _decode(p.read_bytes(), src)
        if fmt == "jsonl":
            df = _read_jsonl(text, src)
        elif fmt == "dat":
            df = _read_dat(text, src, dat_columns)
        elif fmt == "csv":
            df = _read_csv(text, src, p.suffix.lower() == ".tsv", text_columns)
        else:
            raise InputError(f"unknown file format {fmt!r} (csv, parquet, jsonl, dat)", src)
    if df.empty:
        raise InputError("no data rows" + (" (header only)" if len(df.columns) else ""), src)
    return df


def _decode(raw: bytes, src: str) -> str:
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark is fine
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 text: undecodable byte 0x{raw[e.start]:02x} at offset {e.start}",
            src,
            row=line,
            hint="re-encode the file as UTF-8",
        ) from None


def _read_csv(text: str, src: str, tab: bool, as_text: bool) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep="\t" if tab else ",",
            dtype=str if as_text else None,
            keep_default_na=False,
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise InputError("no columns: the file holds only blank lines", src) from None
    except (pd.errors.ParserError, ValueError) as e:
        msg = str(e).strip().splitlines()[-1]
        m = re.search(r"line (\d+)", msg)
        raise InputError(f"malformed CSV: {msg}", src, row=int(m.group(1)) if m else None) from None


def _read_jsonl(text: str, src: str) -> pd.DataFrame:
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid or truncated JSON ({e.msg}, column {e.colno})", src, row=n) from None
        if not isinstance(rec, dict):
            raise InputError(f"expected one JSON object per line, found {type(rec).__name__}", src, row=n)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def _read_dat(text: str, src: str, columns: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != len(columns):
            raise InputError(
                f"expected {len(columns)} fields separated by '::', found {len(parts)}",
                src,
                row=n,
                hint="wrong separator? .dat files are user::item::rating::ts",
            )
        rows.append(parts)
    return pd.DataFrame(rows, columns=list(columns), dtype=str)


def has_header(path: str | Path, fmt: FileFormat = "auto") -> bool:
    """Whether row numbers in ``path`` count a header line (CSV does; JSON lines, .dat, Parquet don't)."""
    return (fmt if fmt != "auto" else _SUFFIX.get(Path(path).suffix.lower(), "csv")) == "csv"


# -- typed columns -----------------------------------------------------------------------------
def normalise_columns(df: pd.DataFrame, aliases: dict[str, str] | None = None) -> pd.DataFrame:
    """Lower-case, strip and alias column names (``userId`` → ``user_id``, ``timestamp`` → ``ts``)."""
    al = _ALIASES if aliases is None else aliases
    return df.rename(columns={c: al.get(str(c).strip().lower(), str(c).strip().lower()) for c in df.columns})


def require_columns(df: pd.DataFrame, columns: list[str], src: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; found {list(df.columns)}", src)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _row(i: int, header: bool) -> int:
    """1-based line number of data row ``i`` in a text file (after a header line when ``header``)."""
    return i + (2 if header else 1)


def int_ids(
    s: pd.Series, column: str, src: str, mapping: IdMapping = "none", header: bool = True
) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer ids ``>= 0`` as int64, and the original → int64 map (empty unless ``stable_hash``).

    Without a mapping, ids must be integers in ``[0, 2^63)``: words, fractions, values beyond
    int64 and negatives (``-1`` is the padding id in every result) are rejected with the row.
    With ``mapping="stable_hash"`` every id, as text, maps to ``stable_int64`` (blake2b).
    """
    if s.isna().any() or (s.dtype == object and s.astype(str).str.strip().eq("").any()):
        bad = s.isna().to_numpy() | (
            s.astype(str).str.strip().eq("").to_numpy() if s.dtype == object else False
        )
        raise InputError(f"{column} is missing", src, row=_row(_first(bad), header))
    if mapping == "stable_hash":
        text = s.map(lambda v: str(v).strip()).to_numpy(dtype=object)
        uniq = pd.unique(text)
        codes = np.fromiter((stable_int64(u) for u in uniq), dtype=np.int64, count=len(uniq))
        ids = codes[pd.Index(uniq).get_indexer(text)]
        return ids, pd.DataFrame({"column": column, "original": uniq.astype(str), "id": codes})
    empty = pd.DataFrame(
        {"column": pd.Series(dtype=str), "original": pd.Series(dtype=str), "id": pd.Series(dtype=np.int64)}
    )
    if pd.api.types.is_bool_dtype(s):
        raise InputError(f"{column} is boolean, not an integer id", src)
    if pd.api.types.is_integer_dtype(s):
        v = s.to_numpy()
        if v.dtype == np.uint64 and (v > INT64_MAX).any():
            raise InputError(
                f"{column} {v[v > INT64_MAX][0]} is beyond int64",
                src,
                row=_row(_first(v > INT64_MAX), header),
            )
        v = v.astype(np.int64)
    elif pd.api.types.is_float_dtype(s):
        f = s.to_numpy(np.float64)
        frac = ~np.isfinite(f) | (f != np.round(f))
        if frac.any():
            raise InputError(
                f"{column} {f[frac][0]!r} is not an integer id", src, row=_row(_first(frac), header)
            )
        if (np.abs(f) >= 2.0**63).any():
            raise InputError(
                f"{column} {f[np.abs(f) >= 2.0**63][0]:.0f} is beyond int64",
                src,
                row=_row(_first(np.abs(f) >= 2.0**63), header),
            )
        v = f.astype(np.int64)
    else:
        t = s.astype(str).str.strip()
        ok = t.str.fullmatch(_INT_RE).to_numpy()
        if not ok.all():
            i = _first(~ok)
            val = t.iloc[i]
            numeric = (
                re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)(e[+-]?\d+)?|[+-]?(inf|nan)", val, re.I) is not None
            )
            raise InputError(
                f"{column} {val!r} is not an integer id",
                src,
                row=_row(i, header),
                hint=None
                if numeric
                else "a string id: set id_mapping='stable_hash' to map string ids to stable int64 ids",
            )
        big = t.str.lstrip("+-").str.lstrip("0").str.len().to_numpy() > 18
        if big.any():  # only long strings can overflow: check those exactly
            vals = [int(x) for x in t[big]]
            over = [x for x in vals if not -(2**63) <= x <= INT64_MAX]
            if over:
                j = np.flatnonzero(big)[[int(x) for x in vals].index(over[0])]
                raise InputError(f"{column} {over[0]} is beyond int64", src, row=_row(int(j), header))
        v = t.astype(np.int64).to_numpy()
    if (v < 0).any():
        raise InputError(
            f"{column} {v[v < 0][0]} is negative (ids are >= 0; -1 marks padding in results)",
            src,
            row=_row(_first(v < 0), header),
        )
    return v, empty


def timestamps(s: pd.Series, src: str, fmt: TsFormat = "unix_s", header: bool = True) -> np.ndarray:
    """Unix seconds as int64 from unix seconds, unix milliseconds or ISO-8601 text."""
    if s.isna().any():
        raise InputError("ts is missing", src, row=_row(_first(s.isna().to_numpy()), header))
    if fmt == "iso8601":
        t = pd.to_datetime(s.astype(str), utc=True, format="ISO8601", errors="coerce")
        if t.isna().any():
            i = _first(t.isna().to_numpy())
            raise InputError(f"ts {s.iloc[i]!r} is not an ISO-8601 timestamp", src, row=_row(i, header))
        return (t.astype("int64") // 10**9).to_numpy(np.int64)
    num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s) else s.astype(np.float64)
    if num.isna().any() or not np.isfinite(num.to_numpy(np.float64)).all():
        bad = num.isna().to_numpy() | ~np.isfinite(num.to_numpy(np.float64))
        i = _first(bad)
        iso = pd.notna(
            pd.to_datetime(pd.Series([str(s.iloc[i])]), utc=True, format="ISO8601", errors="coerce")[0]
        )
        raise InputError(
            f"ts {s.iloc[i]!r} is not a unix timestamp",
            src,
            row=_row(i, header),
            hint="set ts_format='iso8601' for ISO-8601 timestamps" if iso else None,
        )
    f = num.to_numpy(np.float64)
    if (np.abs(f) >= 2.0**62).any():
        i = _first(np.abs(f) >= 2.0**62)
        raise InputError(f"ts {s.iloc[i]!r} is out of range", src, row=_row(i, header))
    v = np.floor(f).astype(np.int64)
    return v // 1000 if fmt == "unix_ms" else v


def floats(s: pd.Series, column: str, src: str, header: bool = True) -> np.ndarray:
    """float64 values; text that is not a number is rejected with its row (NaN/inf pass to the suite)."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(np.float64)
    t = s.astype(str).str.strip()
    num = pd.to_numeric(t.replace({"": "nan"}), errors="coerce")
    bad = num.isna().to_numpy() & ~t.str.lower().isin(["", "nan", "null", "none"]).to_numpy()
    if bad.any():
        i = _first(bad)
        raise InputError(f"{column} {s.iloc[i]!r} is not a number", src, row=_row(i, header))
    return num.to_numpy(np.float64)


def text_lists(s: pd.Series) -> pd.Series:
    """List columns from Parquet/JSON lists, JSON text (``["a","b"]``) or ``a|b`` text."""

    def one(v):
        if isinstance(v, (list, tuple, np.ndarray)):
            return [str(x) for x in v]
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            return []
        t = str(v).strip()
        if t.startswith("["):
            try:
                return [str(x) for x in json.loads(t)]
            except json.JSONDecodeError:
                pass
        return [x.strip() for x in t.split("|") if x.strip()]

    return s.map(one)


# -- interactions ------------------------------------------------------------------------------
def load_interaction_file(
    path: str | Path, fmt: FileFormat = "auto", id_mapping: IdMapping = "none", ts_format: TsFormat = "unix_s"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions from a file: ``(user_id, item_id, ts, rating)`` typed, and the id map.

    Parameters
    ----------
    path : str or Path
        MovieLens ``ratings.csv`` (``userId,movieId,rating,timestamp``), ``user::item::rating::ts``
        (``.dat``: MovieTweetings, MovieLens-1M), Parquet or JSON lines; aliases are normalised.
    fmt : {"auto", "csv", "parquet", "jsonl", "dat"}
        ``auto`` picks by extension.
    id_mapping : {"none", "stable_hash"}
        ``stable_hash`` maps string ids to stable int64; the map is returned for the
        ``interaction_id_map`` asset.
    ts_format : {"unix_s", "unix_ms", "iso8601"}

    Returns
    -------
    interactions : DataFrame
        ``user_id``, ``item_id``, ``ts`` (int64), ``rating`` (float64; 1.0 when the file has none).
    id_map : DataFrame
        ``column``, ``original``, ``id`` (empty without a mapping).
    """
    src = str(path)
    df = normalise_columns(read_table(path, fmt))
    header = has_header(path, fmt)
    require_columns(df, ["user_id", "item_id", "ts"], src)
    users, umap = int_ids(df["user_id"], "user_id", src, id_mapping, header)
    items, imap = int_ids(df["item_id"], "item_id", src, id_mapping, header)
    out = pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "ts": timestamps(df["ts"], src, ts_format, header),
            "rating": floats(df["rating"], "rating", src, header) if "rating" in df.columns else 1.0,
        }
    )
    return out, pd.concat([umap, imap], ignore_index=True)


@dataclass(frozen=True)
class ImplicitConversion:
    """How an explicit rating or an interaction count becomes an implicit-feedback confidence.

    ``confidence`` is what implicit ALS multiplies into its loss (Hu, Koren & Volinsky 2008):

    - ``binary``: 1 for every interaction.
    - ``linear``: ``1 + alpha * rating``.
    - ``log``: ``1 + alpha * log(1 + rating / epsilon)``.

    Rows with ``rating < min_rating`` are dropped first (e.g. 3.5 keeps only liked movies); rows
    whose rating is missing or negative are *kept* so the validation suite reports them.
    """

    method: ConversionMethod = "linear"
    alpha: float = 1.0
    epsilon: float = 1.0
    min_rating: float | None = None

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return a copy of ``df`` with a ``confidence`` column (and ``rating`` filled for binary)."""
        out = df.copy()
        if "rating" not in out.columns:
            if self.method != "binary":
                # Leave confidence absent: the suite names the missing column.
                return out
            out["rating"] = 1.0
        r = pd.to_numeric(out["rating"], errors="coerce").astype("float64")
        if self.min_rating is not None:
            keep = ~(r < self.min_rating) | (r < 0)  # NaN and negatives survive to be reported
            out, r = out[keep], r[keep]
        if self.method == "binary":
            conf = np.where(np.isnan(r), np.nan, 1.0)
        elif self.method == "linear":
            conf = 1.0 + self.alpha * r
        elif self.method == "log":
            with np.errstate(invalid="ignore", divide="ignore"):
                conf = 1.0 + self.alpha * np.log1p(r / self.epsilon)
        else:
            raise ValueError(f"unknown implicit conversion {self.method!r} (binary, linear, log)")
        out["rating"] = r
        out["confidence"] = np.asarray(conf, dtype=np.float64)
        return out.reset_index(drop=True)
