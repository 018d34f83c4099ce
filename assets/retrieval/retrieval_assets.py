"""Retrieval assets: lookalike audiences (U2U, I2U2U, I2I2U) and the similar-entities table."""

import dagster as dg
import numpy as np
import pandas as pd

from assets.indexes.faiss_index import VectorIndex
from assets.retrieval.audiences import ItemAudiences
from assets.retrieval.lookalike import i2i2u, i2u2u, item_audience, u2u
from assets.retrieval.recommender_inputs import IdCodec
from assets.retrieval.similar import similar_to_entities


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
    aud = (
        interactions[interactions["item_id"] == item]
        .groupby("user_id")["confidence"]
        .sum()
        .sort_values(ascending=False, kind="stable")
    )
    return np.array([item], np.int64), aud.index.to_numpy(np.int64)[:n_users]


@dg.asset(kinds={"pandas"})
def lookalike_audiences(
    context: dg.AssetExecutionContext,
    config: LookalikeConfig,
    interactions: pd.DataFrame,
    interaction_id_map: pd.DataFrame,
    faiss_index_als_users: VectorIndex,
    faiss_index_als_items: VectorIndex,
) -> dg.Output[pd.DataFrame]:
    """Audiences by strategy: columns ``strategy``, ``rank``, ``user_id``, ``user`` (the original id)
    and ``score``."""
    d_items, d_users = default_seeds(interactions)
    items = np.array(config.seed_item_ids, np.int64) if config.seed_item_ids else d_items
    users = np.array(config.seed_user_ids, np.int64) if config.seed_user_ids else d_users
    exclude = np.array(config.exclude_user_ids, np.int64)
    runs = {
        "u2u": u2u(
            users,
            faiss_index_als_users,
            size=config.audience_size,
            k_per_seed=config.k_per_seed,
            exclude=exclude,
        ),
        "i2u2u": i2u2u(
            items,
            interactions,
            faiss_index_als_users,
            size=config.audience_size,
            k_per_seed=config.k_per_seed,
            exclude=exclude,
        ),
        "i2i2u": i2i2u(
            items, interactions, faiss_index_als_items, size=config.audience_size, exclude=exclude
        ),
    }
    frames = [
        pd.DataFrame({"strategy": s, "rank": np.arange(1, len(ids) + 1), "user_id": ids, "score": sc})
        for s, (ids, sc) in runs.items()
    ]
    out = pd.concat(frames, ignore_index=True)
    codec = IdCodec.from_id_map(interaction_id_map, "stable_hash" if len(interaction_id_map) else "none")
    out.insert(3, "user", codec.original_users(out["user_id"].to_numpy()))
    sets = {s: set(ids.tolist()) for s, (ids, _) in runs.items()}
    overlap = {
        f"jaccard_{a}_{b}": round(len(sets[a] & sets[b]) / max(1, len(sets[a] | sets[b])), 3)
        for a, b in (("u2u", "i2u2u"), ("i2u2u", "i2i2u"), ("u2u", "i2i2u"))
    }
    context.log.info("lookalike sizes: %s", {s: len(v) for s, v in sets.items()})
    return dg.Output(
        out,
        metadata={
            "rows": len(out),
            **{f"size_{s}": len(v) for s, v in sets.items()},
            **overlap,
            "seed_items": dg.MetadataValue.json(items.tolist()),
            "seed_users": len(users),
            "converted_excluded": int(len(np.union1d(item_audience(items, interactions), exclude))),
        },
    )


class SimilarEntitiesConfig(dg.Config):
    k: int = 10
    same_type_only: bool = False  # a structured filter: neighbours of the entity's own type only


@dg.asset(kinds={"faiss", "pandas"})
def similar_entities(
    config: SimilarEntitiesConfig, entity_profiles: pd.DataFrame, faiss_index_entities: VectorIndex
) -> dg.Output[pd.DataFrame]:
    """For every entity, its ``k`` most similar entities (``entity_id``, ``rank``, ``similar_id``, ``score``):
    the batch form of ``POST /v1/similar``, for CRM screens that show "companies like this one"."""
    ids = entity_profiles["entity_id"].to_numpy(np.int64)
    frames = []
    groups = entity_profiles.groupby("type") if config.same_type_only else [(None, entity_profiles)]
    for t, g in groups:
        gid = g["entity_id"].to_numpy(np.int64)
        found, scores = similar_to_entities(
            faiss_index_entities,
            gid,
            config.k,
            profiles=entity_profiles,
            filters={"type": t} if t is not None else None,
        )
        ok = found >= 0
        frames.append(
            pd.DataFrame(
                {
                    "entity_id": np.repeat(gid, ok.sum(axis=1)),
                    "rank": np.nonzero(ok)[1] + 1,
                    "similar_id": found[ok],
                    "score": scores[ok],
                }
            )
        )
    out = (
        pd.concat(frames, ignore_index=True)
        .sort_values(["entity_id", "rank"], kind="stable")
        .reset_index(drop=True)
    )
    return dg.Output(
        out,
        metadata={
            "rows": len(out),
            "entities": int(len(ids)),
            "k": config.k,
            "mean_score": round(float(out["score"].mean()), 4) if len(out) else 0.0,
        },
    )


@dg.asset(kinds={"numpy"})
def item_audiences(interactions: pd.DataFrame) -> dg.Output[ItemAudiences]:
    """Each item's users as a CSR (``.npy`` arrays the service memory-maps), so a serving worker
    answers "the users of these items" without holding the interactions table."""
    aud = ItemAudiences.from_frame(interactions)
    return dg.Output(
        aud,
        metadata={
            "items": len(aud.item_ids),
            "pairs": len(aud.user_ids),
            "mib": round(aud.nbytes / 2**20, 2),
        },
    )
