"""A matrix-factorisation model as plain arrays: ids and factors for users and items.

Saved as ``.npz`` without pickle plus a JSON sidecar for parameters, so loading one never runs
code from the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class FactorModel:
    """User and item factors with their external ids.

    Attributes
    ----------
    user_ids, item_ids : ndarray of int64
        External ids, aligned with the factor rows.
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
            user_ids=self.user_ids, user_factors=self.user_factors,
            item_ids=self.item_ids, item_factors=self.item_factors,
        )
        (path / "params.json").write_text(json.dumps(self.params, indent=2, sort_keys=True, default=str))

    @classmethod
    def load(cls, path: str | Path) -> "FactorModel":
        path = Path(path)
        with np.load(path / "factors.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("user_ids", "user_factors", "item_ids", "item_factors")}
        return cls(**arrays, params=json.loads((path / "params.json").read_text()))

    def recommend(self, user_ids: np.ndarray, k: int = 10, exclude: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for users by dot product.

        Returns ``(item_ids, scores)`` arrays of shape ``(len(user_ids), k)``; unknown users get
        ``-1`` ids and ``-inf`` scores. ``exclude`` maps a user id to item ids to skip.
        """
        pos = {int(u): i for i, u in enumerate(self.user_ids)}
        k = min(k, len(self.item_ids))
        ids = np.full((len(user_ids), k), -1, dtype=np.int64)
        scores = np.full((len(user_ids), k), -np.inf, dtype=np.float32)
        item_pos = {int(it): j for j, it in enumerate(self.item_ids)}
        for r, u in enumerate(np.asarray(user_ids)):
            i = pos.get(int(u))
            if i is None:
                continue
            s = self.item_factors @ self.user_factors[i]
            for it in (exclude or {}).get(int(u), ()):
                j = item_pos.get(int(it))
                if j is not None:
                    s[j] = -np.inf
            top = np.argsort(-s, kind="stable")[:k]
            ok = np.isfinite(s[top])
            ids[r, : ok.sum()] = self.item_ids[top[ok]]
            scores[r, : ok.sum()] = s[top[ok]]
        return ids, scores
