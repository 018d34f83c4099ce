"""What :func:`~assets.retrieval.recommend.recommend_users` needs besides the models, as one
published object: the seen-items CSR, the popularity fallback, the chosen fusion, the id codec and
the item catalogue (for attribute filters).

Saved as ``.npy``/``.npz``/JSON (no pickle); the CSR is memory-mapped on load, so every serving
worker on a machine shares one copy of it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assets.ingest.catalog import ItemCatalog
from assets.retrieval.recommend import FusionParams, Popularity, UserHistories
from resources.feature_store.base import stable_int64


@dataclass(frozen=True)
class IdCodec:
    """Between the original ids of the source file and the int64 ids the models use.

    Attributes
    ----------
    mapping : {"none", "stable_hash"}
        ``none``: the ids are integers already; ``stable_hash``: ``stable_int64`` of the text.
    item_ids, item_originals : ndarray
        Every item's int64 id (sorted) and its original text (``stable_hash`` only).
    user_ids, user_originals : ndarray
        The same for users (for batch output; a request's user is hashed, not looked up).
    """

    mapping: str = "none"
    item_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    item_originals: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    user_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    user_originals: np.ndarray = field(default_factory=lambda: np.zeros(0, object))

    @classmethod
    def from_id_map(cls, id_map: pd.DataFrame, mapping: str) -> IdCodec:
        """From the ``interaction_id_map`` asset (``column, original, id``)."""
        parts = {}
        for col in ("item_id", "user_id"):
            m = id_map[id_map["column"] == col].drop_duplicates("id").sort_values("id")
            parts[col] = (m["id"].to_numpy(np.int64), m["original"].astype(str).to_numpy(object))
        return cls(mapping, *parts["item_id"], *parts["user_id"])

    def to_internal_user(self, original: str | int) -> int:
        """The model id of a user given in original form; ``-1`` (known to no model) for text that
        cannot be an id here."""
        return int(self.to_internal_items([original])[0])

    def to_internal_items(self, originals) -> np.ndarray:
        """Model ids of ids given in original form. Without a mapping the ids are integers in
        ``[0, 2^63)``; other text matches nothing and maps to ``-1``."""
        if self.mapping == "stable_hash":
            return np.array([stable_int64(str(o).strip()) for o in originals], np.int64)
        texts = [str(o).strip() for o in originals]
        return np.array([int(t) if t.isdigit() and int(t) < 2**63 else -1 for t in texts], np.int64)

    def _originals(self, ids: np.ndarray, known: np.ndarray, text: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        if self.mapping != "stable_hash" or not len(known):
            return ids.astype(str).astype(object)
        at = np.clip(np.searchsorted(known, ids), 0, len(known) - 1)
        return np.where(known[at] == ids, text[at], ids.astype(str)).astype(object)

    def original_items(self, ids: np.ndarray) -> np.ndarray:
        """Original item ids (text) of model ids."""
        return self._originals(ids, self.item_ids, self.item_originals)

    def original_users(self, ids: np.ndarray) -> np.ndarray:
        """Original user ids (text) of model ids."""
        return self._originals(ids, self.user_ids, self.user_originals)


@dataclass(frozen=True)
class RecommenderInputs:
    """The non-model half of a recommender."""

    histories: UserHistories
    popularity: Popularity
    fusion: FusionParams
    codec: IdCodec
    catalog: ItemCatalog = field(default_factory=ItemCatalog.empty)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        self.histories.save(path / "histories")
        self.popularity.save(path)
        c = self.codec
        np.savez(
            path / "codec.npz",
            item_ids=c.item_ids,
            item_originals=c.item_originals.astype(str),
            user_ids=c.user_ids,
            user_originals=c.user_originals.astype(str),
        )
        self.catalog.save(path / "catalog.npz")
        (path / "meta.json").write_text(json.dumps({"fusion": asdict(self.fusion), "mapping": c.mapping}))

    @classmethod
    def load(cls, path: str | Path) -> RecommenderInputs:
        path = Path(path)
        meta = json.loads((path / "meta.json").read_text())
        with np.load(path / "codec.npz", allow_pickle=False) as z:
            codec = IdCodec(
                meta["mapping"],
                z["item_ids"],
                z["item_originals"].astype(object),
                z["user_ids"],
                z["user_originals"].astype(object),
            )
        return cls(
            UserHistories.load(path / "histories"),
            Popularity.load(path),
            FusionParams(**meta["fusion"]),
            codec,
            ItemCatalog.load(path / "catalog.npz")
            if (path / "catalog.npz").exists()
            else ItemCatalog.empty(),
        )
