"""A matrix-factorisation model as plain arrays: ids and factors for users and items.

Saved as ``.npz`` without pickle plus a JSON sidecar for parameters, so loading one never runs
code from the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.common.topk import batched_topk, interaction_mask, take_ids


@dataclass
class FactorModel:
    """User and item factors with their external ids.

    Attributes
    ----------
    user_ids, item_ids : ndarray of int64
        External ids, sorted, aligned with the factor rows.
    user_factors, item_factors : ndarray of float32, shape (n, rank)
    params : dict
        Training parameters and provenance (engine, rank, regularisation, alpha, iterations,
        MLflow run id / model version once registered).
    """

    user_ids: np.ndarray
    user_factors: np.ndarray
    item_ids: np.ndarray
    item_factors: np.ndarray
    params: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(
            path / "factors.npz",
            user_ids=self.user_ids,
            user_factors=self.user_factors,
            item_ids=self.item_ids,
            item_factors=self.item_factors,
        )
        (path / "params.json").write_text(json.dumps(self.params, indent=2, sort_keys=True, default=str))

    @classmethod
    def load(cls, path: str | Path) -> FactorModel:
        path = Path(path)
        with np.load(path / "factors.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("user_ids", "user_factors", "item_ids", "item_factors")}
        return cls(**arrays, params=json.loads((path / "params.json").read_text()))

    def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Factor row of each user id, ``-1`` for unknown users (a binary search over the sorted
        ids: a one-user request costs O(log n), not an index over every user)."""
        q = np.asarray(user_ids, dtype=np.int64)
        if not len(self.user_ids):
            return np.full(len(q), -1, np.int64)
        if "_sorted" not in self.__dict__:  # checked once: the arrays do not change
            self.__dict__["_sorted"] = bool(len(self.user_ids) < 2 or (np.diff(self.user_ids) > 0).all())
        if not self.__dict__["_sorted"]:
            return pd.Index(self.user_ids).get_indexer(q)
        at = np.clip(np.searchsorted(self.user_ids, q), 0, len(self.user_ids) - 1)
        return np.where(self.user_ids[at] == q, at, -1)

    def recommend(
        self,
        user_ids: np.ndarray,
        k: int = 10,
        exclude: sp.spmatrix | pd.DataFrame | dict | None = None,
        batch: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for users by dot product, batched (no per-user Python loop).

        Parameters
        ----------
        user_ids : array of int64
        k : int
        exclude : sparse matrix, DataFrame or dict, optional
            Items not to return: a ``(len(user_ids), n_items)`` mask in :attr:`item_ids` order, a
            frame of ``user_id, item_id`` pairs (e.g. the training interactions), or a dict
            ``user_id -> item ids``.
        batch : int
            Users scored per matrix product (memory ``batch × n_items`` floats).

        Returns
        -------
        item_ids, scores : ndarray, shape (len(user_ids), k)
            Best first; unknown users and missing slots get ``-1`` / ``-inf``.
        """
        user_ids = np.asarray(user_ids, dtype=np.int64)
        rows = self.user_rows(user_ids)
        mask = exclusion_matrix(exclude, user_ids, self.item_ids)
        ids = np.full((len(user_ids), k), -1, dtype=np.int64)
        scores = np.full((len(user_ids), k), -np.inf, dtype=np.float32)
        known = np.flatnonzero(rows >= 0)
        if known.size:
            pos, sc = batched_topk(
                self.user_factors[rows[known]],
                self.item_factors,
                k,
                None if mask is None else mask[known],
                batch=batch,
            )
            ids[known], scores[known] = take_ids(self.item_ids, pos), sc
        return ids, scores


def exclusion_matrix(exclude, user_ids: np.ndarray, item_ids: np.ndarray) -> sp.csr_matrix | None:
    """Normalise the accepted ``exclude`` forms to a CSR ``(len(user_ids), len(item_ids))`` mask."""
    if exclude is None:
        return None
    if sp.issparse(exclude):
        return exclude.tocsr()
    if isinstance(exclude, dict):
        pairs = [(u, i) for u, items in exclude.items() for i in items]
        exclude = pd.DataFrame(pairs, columns=["user_id", "item_id"], dtype=np.int64)
    if isinstance(exclude, pd.DataFrame):
        return interaction_mask(exclude, user_ids, item_ids)
    raise TypeError(
        f"exclude must be a sparse matrix, a DataFrame of pairs or a dict, not {type(exclude).__name__}"
    )
