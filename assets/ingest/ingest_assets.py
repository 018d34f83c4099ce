"""Ingest assets: interactions, entity profiles and KB documents, each gated at the boundary.

Every loader failure (missing or unreadable file, undecodable bytes, wrong shape or types)
becomes a ``dagster.Failure`` naming the file, the problem and the row; everything that parses
then passes a blocking Great Expectations suite before it is written.
"""

from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd

from assets.ingest.catalog import empty_catalog, load_catalog_file, synthetic_catalog
from assets.ingest.entities import generate_profiles, load_profiles_file
from assets.ingest.kb import documents_profile, generate_kb, load_documents_file
from assets.ingest.loaders import (
    ConversionMethod,
    FileFormat,
    IdMapping,
    ImplicitConversion,
    TsFormat,
    load_interaction_file,
)
from assets.ingest.synthetic import SyntheticSpec, generate_interactions, item_communities
from resources.validation import GreatExpectationsResource, InputError, gate

Source = Literal["synthetic", "file"]


class InteractionsConfig(dg.Config):
    """Where interactions come from and how ratings become confidences."""

    source: Source = "synthetic"
    path: str = ""  # for source="file": CSV, Parquet, JSON lines, or user::item::rating::ts (.dat)
    format: FileFormat = "auto"
    id_mapping: IdMapping = "none"  # stable_hash: string ids -> stable int64 (kept in interaction_id_map)
    ts_format: TsFormat = "unix_s"  # iso8601 for timestamps such as 2024-05-01T10:00:00Z
    n_interactions: int = 100_000
    n_communities: int = 10
    seed: int = 42
    conversion: ConversionMethod = "linear"
    alpha: float = 1.0
    min_rating: float | None = None
    # for source="file": the item catalogue (item_id + attribute columns, e.g. movies.csv); "" for none
    catalog_path: str = ""


def load_interactions(config: InteractionsConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Interactions for ``config`` with a ``confidence`` column (not yet validated), the id map and
    the long-form item catalogue (:mod:`assets.ingest.catalog`)."""
    if config.source == "synthetic":
        spec = SyntheticSpec(
            n_interactions=config.n_interactions, n_communities=config.n_communities, seed=config.seed
        )
        raw, _ = generate_interactions(spec)
        id_map = pd.DataFrame(
            {"column": pd.Series(dtype=str), "original": pd.Series(dtype=str), "id": pd.Series(dtype="int64")}
        )
        catalog = synthetic_catalog(item_communities(spec))
    else:
        raw, id_map = load_interaction_file(config.path, config.format, config.id_mapping, config.ts_format)
        catalog = (
            load_catalog_file(config.catalog_path, "auto", config.id_mapping)
            if config.catalog_path
            else empty_catalog()
        )
    conv = ImplicitConversion(method=config.conversion, alpha=config.alpha, min_rating=config.min_rating)
    return conv.apply(raw), id_map, catalog


@dg.multi_asset(
    outs={
        "interactions": dg.AssetOut(
            kinds={"pandas", "parquet"},
            description=(
                "User–item interactions: user_id, item_id (int64), ts (unix s), rating, confidence (ALS "
                "weight)."
            ),
        ),
        "interaction_id_map": dg.AssetOut(
            kinds={"pandas"},
            description=(
                "Original → int64 ids when id_mapping='stable_hash' (column, original, id); empty otherwise."
            ),
        ),
        "item_catalog": dg.AssetOut(
            kinds={"pandas"},
            description=(
                "Item attributes, one row per value (item_id, attribute, value): the recommenders' "
                "attribute filters. The synthetic source plants category = the item's community."
            ),
        ),
    },
    check_specs=[
        dg.AssetCheckSpec(
            "interactions_suite",
            asset="interactions",
            blocking=True,
            description="Great Expectations suite expectations/interactions.json",
        )
    ],
)
def interactions(
    context: dg.AssetExecutionContext, config: InteractionsConfig, gx: GreatExpectationsResource
):
    """User–item interactions with an implicit-feedback ``confidence``, and their id map."""
    try:
        df, id_map, catalog = load_interactions(config)
    except InputError as e:
        raise e.failure() from None
    context.log.info("loaded %d interactions from %s", len(df), config.path or config.source)
    yield from gate(gx.validate(df, "interactions"), "interactions_suite", "interactions")
    yield dg.Output(
        df,
        output_name="interactions",
        metadata={
            "rows": len(df),
            "users": int(df["user_id"].nunique()),
            "items": int(df["item_id"].nunique()),
            "source": config.source,
            "id_mapping": config.id_mapping,
            "density": float(len(df) / max(1, df["user_id"].nunique() * df["item_id"].nunique())),
            "preview": dg.MetadataValue.md(df.head(5).to_markdown(index=False)),
        },
    )
    yield dg.Output(id_map, output_name="interaction_id_map", metadata={"rows": len(id_map)})
    described = np.isin(df["item_id"].unique(), catalog["item_id"].to_numpy(np.int64))
    yield dg.Output(
        catalog,
        output_name="item_catalog",
        metadata={
            "rows": len(catalog),
            "items": int(catalog["item_id"].nunique()),
            "attributes": ", ".join(sorted(catalog["attribute"].unique())) or "none",
            "interacted_items_described": float(described.mean()) if len(described) else 0.0,
        },
    )


class EntityProfilesConfig(dg.Config):
    source: Source = "synthetic"
    # for source="file": CSV, Parquet or JSON lines with entity_id, description[, name, location, type, tags]
    path: str = ""
    id_mapping: IdMapping = "none"
    n_entities: int = 2000
    seed: int = 5


@dg.asset(
    kinds={"pandas"},
    check_specs=[
        dg.AssetCheckSpec(
            "entity_profiles_suite",
            asset="entity_profiles",
            blocking=True,
            description="expectations/entity_profiles.json",
        )
    ],
)
def entity_profiles(config: EntityProfilesConfig, gx: GreatExpectationsResource):
    """Companies: ``entity_id``, ``name``, ``description``, ``location``, ``type``, ``tags`` (and ``industry``
    where known, for evaluation)."""
    try:
        df = (
            generate_profiles(config.n_entities, config.seed)
            if config.source == "synthetic"
            else load_profiles_file(config.path, config.id_mapping)
        )
    except InputError as e:
        raise e.failure() from None
    yield from gate(gx.validate(df.drop(columns=["tags"]), "entity_profiles"), "entity_profiles_suite")
    yield dg.Output(
        df,
        metadata={
            "rows": len(df),
            "preview": dg.MetadataValue.md(df.head(3).drop(columns="tags").to_markdown(index=False)),
        },
    )


class KbConfig(dg.Config):
    source: Source = "synthetic"
    path: str = ""  # for source="file": CSV, Parquet or JSON lines with doc_id, title, questions
    test_fraction: float = 0.1  # of each file document's similar questions, held out as test queries
    n_docs: int = 48
    questions_per_doc: int = 8
    seed: int = 3


@dg.asset(
    kinds={"pandas"},
    check_specs=[
        dg.AssetCheckSpec(
            "kb_documents_suite",
            asset="kb_documents",
            blocking=True,
            description="expectations/kb_documents.json",
        )
    ],
)
def kb_documents(config: KbConfig, gx: GreatExpectationsResource):
    """FAQ documents (title + similar questions), training query pairs and held-out queries."""
    try:
        kb = (
            generate_kb(config.n_docs, config.questions_per_doc, config.seed)
            if config.source == "synthetic"
            else load_documents_file(config.path, config.test_fraction, config.seed)
        )
    except InputError as e:
        raise e.failure() from None
    yield from gate(gx.validate(documents_profile(kb), "kb_documents"), "kb_documents_suite")
    out = {k: v.to_dict("records") for k, v in kb.items()}
    yield dg.Output(
        out,
        metadata={
            "documents": len(kb["docs"]),
            "train_pairs": len(kb["train"]),
            "test_queries": len(kb["test"]),
        },
    )
