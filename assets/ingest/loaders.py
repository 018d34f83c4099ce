"""Loaders for real interaction files and the explicit → implicit feedback conversion.

Every loader returns the raw interaction frame (``user_id``, ``item_id``, ``ts``, ``rating``)
*without* validating it: validation is the Great Expectations suite's job, so that a bad file
is reported by the blocking check with the failing expectation and row count instead of dying
with a stack trace in a parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

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


def _normalise_columns(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={c: _ALIASES.get(c.strip().lower(), c.strip().lower()) for c in df.columns})


def load_movielens_csv(path: str | Path) -> pd.DataFrame:
    """Load a MovieLens ``ratings.csv`` (header ``userId,movieId,rating,timestamp``)."""
    df = pd.read_csv(path)
    return _normalise_columns(df)


def load_movietweetings(path: str | Path) -> pd.DataFrame:
    """Load a ``user::item::rating::ts`` file (MovieTweetings ``ratings.dat``, MovieLens-1M).

    Item ids such as IMDb ``0104257`` are parsed as integers (leading zeros carry no meaning).
    """
    df = pd.read_csv(
        path,
        sep="::",
        engine="python",
        header=None,
        names=["user_id", "item_id", "rating", "ts"],
        dtype={"user_id": "int64", "item_id": "int64", "rating": "float64", "ts": "int64"},
    )
    return df


def load_interaction_file(path: str | Path, fmt: str = "auto") -> pd.DataFrame:
    """Load interactions from CSV, Parquet, JSON lines or ``::``-separated files.

    Parameters
    ----------
    path : str or Path
        The file.
    fmt : {"auto", "csv", "parquet", "jsonl", "dat"}
        ``auto`` picks by extension (``.dat`` means ``::``-separated).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"interaction file not found: {path}")
    if fmt == "auto":
        fmt = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".dat": "dat"}.get(
            path.suffix.lower(), "csv"
        )
    if fmt == "dat":
        return load_movietweetings(path)
    if fmt == "parquet":
        df = pd.read_parquet(path)
    elif fmt == "jsonl":
        df = pd.read_json(path, lines=True)
    elif fmt == "csv":
        df = pd.read_csv(path)
    else:
        raise ValueError(f"unknown interaction file format {fmt!r} (csv, parquet, jsonl, dat)")
    return _normalise_columns(df)


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

    method: str = "linear"
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
