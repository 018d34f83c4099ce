"""The feature dictionary: data, not code, drives every derived feature.

Columns: ``dim`` (entity type the feature lives on), ``id``, ``name`` (output base name),
``explain``, ``cal_sort`` (``|``-separated window functions), ``times`` (``|``-separated windows
in days), ``data_src`` (the MID daily feature it reads) and ``agg_rule`` (how the feature rolls up
to an opportunity: sum, max, min, mean). Adding a derived feature is adding a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from assets.features.warehouse_config import WarehouseConfig
from assets.features.window_kernel import FUNCS
from resources.validation import InputError

DEFAULT_PATH = Path(__file__).with_name("data") / "feature_dictionary.csv"
COLUMNS = ["dim", "id", "name", "explain", "cal_sort", "times", "data_src", "agg_rule"]
AGG_RULES = ("sum", "max", "min", "mean")


class DictionaryError(InputError):
    """A dictionary row that cannot drive a feature (names the row and what is wrong)."""


@dataclass(frozen=True)
class Entry:
    dim: str
    id: int
    name: str
    funcs: tuple[str, ...]
    windows: tuple[int, ...]
    data_src: str
    agg_rule: str
    explain: str = ""


def parse_dictionary(df: pd.DataFrame, config: WarehouseConfig) -> list[Entry]:
    """Validate and parse dictionary rows against the warehouse ``config``.

    A row's ``dim`` must be one of the config's dimensions, its ``data_src`` one of the MID
    features its event types build, and its windows positive integers up to ``history_days``.
    Row numbers in errors are 1-based data rows.
    """
    dims, mid_features, hist = config.dims, config.mid_features, config.history_days
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DictionaryError(f"feature dictionary lacks columns {missing}")
    entries, names = [], set()
    for i, r in enumerate(df.to_dict("records"), start=1):
        where = f"dictionary row {i} (id={r['id']}, name={r['name']!r})"
        if not str(r["id"]).strip().isdigit() or int(str(r["id"]).strip()) > 2**63 - 1:
            raise DictionaryError(f"{where}: id {r['id']!r} is not an integer in [0, 2^63)")
        if not str(r["name"]).strip():
            raise DictionaryError(f"{where}: empty name")
        funcs = tuple(f.strip().upper() for f in str(r["cal_sort"]).split("|") if f.strip())
        unknown = [f for f in funcs if f not in FUNCS]
        if unknown or not funcs:
            raise DictionaryError(
                f"{where}: unknown window function(s) {unknown or '(none)'}; known: {list(FUNCS)}"
            )
        try:
            windows = tuple(int(w) for w in str(r["times"]).split("|") if w.strip())
        except ValueError:
            raise DictionaryError(f"{where}: windows {r['times']!r} are not integers") from None
        bad_w = [w for w in windows if not 1 <= w <= hist]
        if bad_w or not windows:
            raise DictionaryError(
                f"{where}: window(s) {bad_w or '(none)'} outside 1..{hist} days "
                "(history_days of the warehouse config)"
            )
        if r["dim"] not in dims:
            raise DictionaryError(f"{where}: unknown dim {r['dim']!r}; known: {list(dims)}")
        if r["data_src"] not in mid_features:
            raise DictionaryError(f"{where}: unknown data_src {r['data_src']!r}; known: {list(mid_features)}")
        if r["agg_rule"] not in AGG_RULES:
            raise DictionaryError(f"{where}: unknown agg_rule {r['agg_rule']!r}; known: {list(AGG_RULES)}")
        if r["name"] in names:
            raise DictionaryError(f"{where}: duplicate name")
        names.add(r["name"])
        entries.append(
            Entry(
                r["dim"],
                int(r["id"]),
                r["name"],
                funcs,
                windows,
                r["data_src"],
                r["agg_rule"],
                str(r.get("explain", "")),
            )
        )
    return entries


def history_needed(entries: list[Entry]) -> int:
    """Days of MID a day's window features read: the longest window the dictionary uses."""
    return max(w for e in entries for w in e.windows)


def load_dictionary(path: str | Path = DEFAULT_PATH) -> pd.DataFrame:
    """The dictionary file as text columns (``id`` as int64 once every row passed
    :func:`parse_dictionary`); unreadable files raise ``InputError`` naming the file."""
    from assets.ingest.loaders import read_table

    return read_table(path, "csv")
