"""The item catalogue: each item's attributes, for the recommenders' attribute filters.

The catalogue arrives with the interactions (``InteractionsConfig.catalog_path``): a file with
``item_id`` and one column per attribute (MovieLens ``movies.csv``: ``genres``; MovieTweetings
``movies.dat``: ``item_id::title::genres``), multi-valued attributes as ``a|b`` or JSON lists. The
synthetic source plants one attribute, ``category``: the item's community, so a filter has a
ground truth to be tested against. It is kept long-form, one ``(item_id, attribute, value)`` row
per value, so an attribute can hold any number of values per item.

:class:`ItemCatalog` turns ``only`` / ``exclude`` filters into the item ids to block, which
:func:`~assets.retrieval.recommend.recommend_users` then removes like a blocklist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assets.ingest.loaders import (
    FileFormat,
    IdMapping,
    has_header,
    int_ids,
    normalise_columns,
    read_table,
    require_columns,
    text_lists,
)
from resources.validation import InputError

# Columns that describe an item but are no attribute to filter on.
NOT_ATTRIBUTES = ("item_id", "title", "name", "description")
DAT_CATALOG_COLUMNS = ("item_id", "title", "genres")  # MovieLens-1M / MovieTweetings movies.dat
SYNTHETIC_ATTRIBUTE = "category"


def empty_catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": pd.Series(dtype="int64"),
            "attribute": pd.Series(dtype=str),
            "value": pd.Series(dtype=str),
        }
    )


def synthetic_catalog(item_communities: np.ndarray) -> pd.DataFrame:
    """The planted catalogue of the synthetic source: ``category = c<community>`` per item."""
    ids = np.arange(len(item_communities), dtype=np.int64)
    return pd.DataFrame(
        {
            "item_id": ids,
            "attribute": SYNTHETIC_ATTRIBUTE,
            "value": np.char.add("c", np.asarray(item_communities).astype(str)).astype(object),
        }
    )


def load_catalog_file(
    path: str | Path, fmt: FileFormat = "auto", id_mapping: IdMapping = "none"
) -> pd.DataFrame:
    """The long-form catalogue of a file: every column but ``item_id`` and free text
    (:data:`NOT_ATTRIBUTES`) is an attribute; ``a|b`` and JSON lists give one row per value.

    Item ids map exactly as the interactions' do (``id_mapping``), so a catalogue row names the
    same int64 item as the interactions. Raises :class:`InputError` for a file without ``item_id``
    or without a single attribute column.
    """
    src = str(path)
    df = normalise_columns(read_table(path, fmt, dat_columns=DAT_CATALOG_COLUMNS))
    require_columns(df, ["item_id"], src)
    attrs = [c for c in df.columns if c not in NOT_ATTRIBUTES]
    if not attrs:
        raise InputError(
            f"no attribute columns besides {list(NOT_ATTRIBUTES)}; found {list(df.columns)}", src
        )
    ids, _ = int_ids(df["item_id"], "item_id", src, id_mapping, has_header(path, fmt))
    parts = []
    for a in attrs:
        values = text_lists(df[a])
        n = values.map(len).to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "item_id": np.repeat(ids, n),
                    "attribute": a,
                    "value": np.array([v for vs in values for v in vs], dtype=object),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    return out.drop_duplicates().sort_values(["item_id", "attribute", "value"], ignore_index=True)


@dataclass(frozen=True)
class ItemCatalog:
    """Item attributes as three aligned arrays (one row per item, attribute and value).

    Attributes
    ----------
    item_ids : ndarray of int64
    attributes, values : ndarray of str
    """

    item_ids: np.ndarray
    attributes: np.ndarray
    values: np.ndarray

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> ItemCatalog:
        """From the long-form ``item_catalog`` table (``item_id, attribute, value``)."""
        return cls(
            df["item_id"].to_numpy(np.int64),
            df["attribute"].astype(str).to_numpy(str),
            df["value"].astype(str).to_numpy(str),
        )

    @classmethod
    def empty(cls) -> ItemCatalog:
        return cls.from_frame(empty_catalog())

    def attribute_names(self) -> list[str]:
        return sorted(set(self.attributes.tolist()))

    def _matching(self, attribute: str, wanted: list[str]) -> np.ndarray:
        hit = (self.attributes == attribute) & np.isin(self.values, np.asarray(wanted, dtype=str))
        return np.unique(self.item_ids[hit])

    def blocked(
        self,
        universe: np.ndarray,
        only: dict[str, list[str]] | None = None,
        exclude: dict[str, list[str]] | None = None,
    ) -> np.ndarray:
        """The items of ``universe`` that the filters remove, sorted.

        Parameters
        ----------
        universe : array of int64
            The items the recommenders could return.
        only : dict, optional
            ``{attribute: [values]}``: keep only items with one of the values of every attribute
            named (an item the catalogue does not describe matches nothing).
        exclude : dict, optional
            ``{attribute: [values]}``: remove items with any of the values.

        Raises
        ------
        ValueError
            For an attribute the catalogue does not have (naming the ones it has): a filter that
            could only ever match nothing, or everything, is a mistake worth a clear answer.
        """
        universe = np.unique(np.asarray(universe, np.int64))
        known = set(self.attribute_names())
        asked = set(only or {}) | set(exclude or {})
        unknown = sorted(asked - known)
        if unknown:
            have = sorted(known) or "none (no catalogue is configured)"
            raise ValueError(f"unknown item attribute(s) {unknown}; the catalogue has {have}")
        keep = np.ones(len(universe), bool)
        for attribute, wanted in (only or {}).items():
            keep &= np.isin(universe, self._matching(attribute, wanted))
        for attribute, unwanted in (exclude or {}).items():
            keep &= ~np.isin(universe, self._matching(attribute, unwanted))
        return universe[~keep]

    def save(self, path: str | Path) -> None:
        np.savez(Path(path), item_ids=self.item_ids, attributes=self.attributes, values=self.values)

    @classmethod
    def load(cls, path: str | Path) -> ItemCatalog:
        with np.load(Path(path), allow_pickle=False) as z:
            return cls(z["item_ids"], z["attributes"], z["values"])


@dataclass(frozen=True)
class ItemFilter:
    """Attribute filters bound to a catalogue: what a request or the daily job asks for."""

    catalog: ItemCatalog
    only: dict[str, list[str]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        self.catalog.blocked(np.zeros(0, np.int64), self.only, self.exclude)  # unknown attributes fail now

    @property
    def active(self) -> bool:
        return bool(self.only or self.exclude)

    def blocked(self, universe: np.ndarray) -> np.ndarray:
        """The items of ``universe`` these filters remove (see :meth:`ItemCatalog.blocked`)."""
        return self.catalog.blocked(universe, self.only, self.exclude)
