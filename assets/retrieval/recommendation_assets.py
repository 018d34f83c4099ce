"""Per-user recommendations from the champions: the inputs the service shares, and the daily lists."""

import dagster as dg
import numpy as np
import pandas as pd

from assets.embeddings.registry import load_registered_factor_model
from assets.ingest.catalog import ItemCatalog, ItemFilter
from assets.retrieval.recommend import SOURCES, FusionParams, Popularity, UserHistories, recommend_users
from assets.retrieval.recommender_inputs import IdCodec, RecommenderInputs
from recstack import names
from resources.mlflow_tracking import MlflowResource

SOURCE_MODELS = {"als": names.ALS_MODEL, "item2vec": names.ITEM2VEC_MODEL}


class UserRecommendationsConfig(dg.Config):
    """List length, the blocklist (original item ids, recommended to nobody), the catalogue
    attribute filters (``{"genres": ["Comedy"]}``: keep only / leave out items with those values)
    and the users scored per batch."""

    k: int = 20
    blocklist: list[str] = []
    only_attributes: dict[str, list[str]] = {}
    exclude_attributes: dict[str, list[str]] = {}
    batch_users: int = 4096


# Per-user exclusion entries (users x blocked items) one batch may hold: the batch shrinks under a
# filter that blocks most of the catalogue, rather than building a mask the size of the scores.
MAX_EXCLUSION_CELLS = 8_000_000


def champion_sources(context, mlflow_tracking: MlflowResource) -> dict:
    """``{"als": FactorModel, "item2vec": FactorModel}`` of the champions (a family without one is
    left out, logged)."""
    out = {}
    for source, model_name in SOURCE_MODELS.items():
        try:
            out[source] = load_registered_factor_model(mlflow_tracking, model_name, names.CHAMPION)
        except LookupError:
            context.log.warning("%s has no champion: its list is left out of the fusion", model_name)
    return out


@dg.asset(kinds={"numpy"})
def recommender_inputs(
    interactions: pd.DataFrame,
    interaction_id_map: pd.DataFrame,
    item_catalog: pd.DataFrame,
    recommendation_fusion: dict,
) -> dg.Output[RecommenderInputs]:
    """The seen-items CSR (memory-mapped by the service), the popularity fallback, the fusion
    ``recommendation_fusion`` chose, the id codec and the item catalogue: what
    ``user_recommendations`` and ``POST /v1/recommend`` share besides the champion models."""
    fusion = FusionParams(**recommendation_fusion["fusion"])
    mapping = "stable_hash" if len(interaction_id_map) else "none"
    inputs = RecommenderInputs(
        UserHistories.from_frame(interactions),
        Popularity.from_frame(interactions, fusion.trending_half_life_days),
        fusion,
        IdCodec.from_id_map(interaction_id_map, mapping),
        ItemCatalog.from_frame(item_catalog),
    )
    return dg.Output(
        inputs,
        metadata={
            "users": len(inputs.histories.item_ids),
            "pairs": len(inputs.histories.user_ids),
            "popular_items": len(inputs.popularity.item_ids),
            "fusion": f"{fusion.method} (ALS weight {fusion.als_weight})",
            "id_mapping": mapping,
            "catalog_attributes": ", ".join(inputs.catalog.attribute_names()) or "none",
        },
    )


@dg.asset(kinds={"pandas"}, deps=[names.ALS_PROMOTION, names.ITEM2VEC_PROMOTION])
def user_recommendations(
    context: dg.AssetExecutionContext,
    config: UserRecommendationsConfig,
    recommender_inputs: RecommenderInputs,
    mlflow_tracking: MlflowResource,
) -> dg.Output[pd.DataFrame]:
    """Every known user's top-``k`` from the ALS and item2vec champions, fused as chosen on
    validation; seen and blocklisted items removed; popularity where the models cannot fill the
    list; ids in their original form. One row per (user, rank) with the row's ``source`` and the
    user's ``reason``."""
    inp = recommender_inputs
    models = champion_sources(context, mlflow_tracking)
    blocked = inp.codec.to_internal_items(config.blocklist) if config.blocklist else None
    try:
        item_filter = ItemFilter(inp.catalog, config.only_attributes, config.exclude_attributes)
    except ValueError as e:
        raise dg.Failure(f"user_recommendations: {e}", allow_retries=False) from None
    universe = np.unique(np.concatenate([m.item_ids for m in models.values()] + [inp.popularity.item_ids]))
    n_blocked = len(item_filter.blocked(universe)) + (0 if blocked is None else len(blocked))
    batch = int(max(64, min(config.batch_users, MAX_EXCLUSION_CELLS // max(1, n_blocked))))
    users = inp.histories.item_ids  # the CSR's keys: every user with an interaction
    parts = []
    for start in range(0, len(users), batch):
        block = np.asarray(users[start : start + batch])
        recs = recommend_users(
            block, models, inp.fusion, config.k, inp.popularity, inp.histories, blocked, item_filter
        )
        parts.append(recs.to_frame())
        if (start // batch) % 10 == 0:
            context.log.info(
                "recommended for %d of %d users", min(start + len(block), len(users)), len(users)
            )
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(out):
        out.insert(1, "user", inp.codec.original_users(out["user_id"].to_numpy()))
        out.insert(4, "item", inp.codec.original_items(out["item_id"].to_numpy()))
    by_reason = out.drop_duplicates("user_id")["reason"].value_counts() if len(out) else pd.Series(dtype=int)
    versions = {s: str(m.params.get("model_version", "")) for s, m in models.items()}
    return dg.Output(
        out,
        metadata={
            "rows": len(out),
            "users": int(out["user_id"].nunique()) if len(out) else 0,
            "k": config.k,
            "fusion": inp.fusion.method,
            "items_filtered_out": n_blocked,
            **{f"{s}_version": versions.get(s, "none") for s in SOURCES},
            "popularity_rows": int((out["source"] == "popularity").sum()) if len(out) else 0,
            "by_reason": dg.MetadataValue.md(by_reason.rename("users").to_frame().to_markdown()),
            "preview": dg.MetadataValue.md(out.head(10).to_markdown(index=False)),
        },
    )
