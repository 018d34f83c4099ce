"""Each item's audience (the users who interacted with it) as a compact, memory-mapped CSR.

Lookalike's I2U2U and I2I2U need "the users of these items". A serving worker that held the
interactions table for that would grow with the data; :class:`ItemAudiences` keeps three flat
arrays sorted by item (``indptr`` into ``user_ids`` and ``confidence``), saved as ``.npy`` and
memory-mapped on load, so every worker on a machine shares one copy in the page cache and a
request touches only the slices of its items.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FILES = ("item_ids", "indptr", "user_ids", "confidence")


class ItemAudiences:
    """Users per item, CSR by item id.

    Parameters
    ----------
    item_ids : ndarray of int64, sorted
    indptr : ndarray of int64, ``len(item_ids) + 1``
        Item ``item_ids[j]``'s rows are ``indptr[j]:indptr[j + 1]``.
    user_ids : ndarray of int64
    confidence : ndarray of float32
    """

    def __init__(self, item_ids, indptr, user_ids, confidence):
        self.item_ids, self.indptr = item_ids, indptr
        self.user_ids, self.confidence = user_ids, confidence

    @classmethod
    def from_frame(cls, interactions: pd.DataFrame) -> ItemAudiences:
        """From ``user_id``, ``item_id`` and (optionally) ``confidence`` columns."""
        items = interactions["item_id"].to_numpy(np.int64)
        order = np.argsort(items, kind="stable")
        items = items[order]
        uniq, starts = np.unique(items, return_index=True)
        conf = (
            interactions["confidence"].to_numpy(np.float32)[order]
            if "confidence" in interactions
            else np.ones(len(items), np.float32)
        )
        return cls(
            uniq,
            np.append(starts, len(items)).astype(np.int64),
            interactions["user_id"].to_numpy(np.int64)[order],
            conf,
        )

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self, f).nbytes for f in FILES))

    def rows(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(user_ids, item_ids, confidence)`` of every interaction with one of ``items``."""
        items = np.unique(np.asarray(items, np.int64))
        at = np.searchsorted(self.item_ids, items)
        ok = at < len(self.item_ids)
        ok[ok] = self.item_ids[at[ok]] == items[ok]
        items, at = items[ok], at[ok]
        lo, hi = self.indptr[at], self.indptr[at + 1]
        if not len(items):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])
        return (
            np.asarray(self.user_ids[idx]),
            np.repeat(items, hi - lo),
            np.asarray(self.confidence[idx]),
        )

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for f in FILES:
            np.save(path / f"{f}.npy", getattr(self, f), allow_pickle=False)

    @classmethod
    def load(cls, path: str | Path) -> ItemAudiences:
        """Memory-mapped (read-only): the pages are shared by every process that loads them."""
        path = Path(path)
        return cls(*(np.load(path / f"{f}.npy", mmap_mode="r", allow_pickle=False) for f in FILES))


def audience_rows(
    interactions: pd.DataFrame | ItemAudiences, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user_ids, item_ids, confidence)`` of the interactions with ``items``, from a frame or a CSR."""
    if isinstance(interactions, ItemAudiences):
        return interactions.rows(items)
    hit = interactions[interactions["item_id"].isin(np.asarray(items, np.int64))]
    conf = hit["confidence"].to_numpy(np.float32) if "confidence" in hit else np.ones(len(hit), np.float32)
    return hit["user_id"].to_numpy(np.int64), hit["item_id"].to_numpy(np.int64), conf
