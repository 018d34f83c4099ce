"""Lookalike audience asset: U2U, I2U2U and I2I2U expansion from seeds."""


import dagster as dg
import numpy as np
import pandas as pd

from assets.indexes.faiss_index import VectorIndex
from assets.retrieval.lookalike import i2i2u, i2u2u, item_audience, u2u


class LookalikeConfig(dg.Config):
    """Seeds and sizes. Empty seeds default to the most popular item and its audience."""

    seed_item_ids: list[int] = []
    seed_user_ids: list[int] = []
    exclude_user_ids: list[int] = []  # already converted
    audience_size: int = 500
    k_per_seed: int = 50


def default_seeds(interactions: pd.DataFrame, n_users: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The most popular item, and its ``n_users`` most engaged users."""
    item = int(interactions["item_id"].value_counts().index[0])
    aud = (interactions[interactions["item_id"] == item].groupby("user_id")["confidence"].sum()
           .sort_values(ascending=False, kind="stable"))
    return np.array([item], np.int64), aud.index.to_numpy(np.int64)[:n_users]


@dg.asset(kinds={"pandas"})
def lookalike_audiences(
    context: dg.AssetExecutionContext, config: LookalikeConfig, interactions: pd.DataFrame,
    faiss_index_als_users: VectorIndex, faiss_index_als_items: VectorIndex,
) -> dg.Output[pd.DataFrame]:
    """Audiences by strategy: columns ``strategy``, ``rank``, ``user_id``, ``score``."""
    d_items, d_users = default_seeds(interactions)
    items = np.array(config.seed_item_ids, np.int64) if config.seed_item_ids else d_items
    users = np.array(config.seed_user_ids, np.int64) if config.seed_user_ids else d_users
    exclude = np.array(config.exclude_user_ids, np.int64)
    runs = {
        "u2u": u2u(users, faiss_index_als_users, size=config.audience_size, k_per_seed=config.k_per_seed, exclude=exclude),
        "i2u2u": i2u2u(items, interactions, faiss_index_als_users, size=config.audience_size, k_per_seed=config.k_per_seed, exclude=exclude),
        "i2i2u": i2i2u(items, interactions, faiss_index_als_items, size=config.audience_size, exclude=exclude),
    }
    frames = [pd.DataFrame({"strategy": s, "rank": np.arange(1, len(ids) + 1), "user_id": ids, "score": sc})
              for s, (ids, sc) in runs.items()]
    out = pd.concat(frames, ignore_index=True)
    sets = {s: set(ids.tolist()) for s, (ids, _) in runs.items()}
    overlap = {f"jaccard_{a}_{b}": round(len(sets[a] & sets[b]) / max(1, len(sets[a] | sets[b])), 3)
               for a, b in (("u2u", "i2u2u"), ("i2u2u", "i2i2u"), ("u2u", "i2i2u"))}
    context.log.info("lookalike sizes: %s", {s: len(v) for s, v in sets.items()})
    return dg.Output(out, metadata={
        "rows": len(out), **{f"size_{s}": len(v) for s, v in sets.items()}, **overlap,
        "seed_items": dg.MetadataValue.json(items.tolist()), "seed_users": len(users),
        "converted_excluded": int(len(np.union1d(item_audience(items, interactions), exclude))),
    })
