"""A small, real serving state built in-process (no MLflow): shared by the API tests and the load
benchmark."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pandas as pd

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.entity_vectors import EntityEncoder, EntityVectorParams
from assets.embeddings.text import document_vectors
from assets.embeddings.vectors import l2_normalize
from assets.indexes.faiss_index import VectorIndex
from assets.ingest.catalog import ItemCatalog, synthetic_catalog
from assets.ingest.entities import generate_profiles
from assets.ingest.kb import generate_kb
from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions, item_communities
from assets.retrieval.audiences import ItemAudiences
from assets.retrieval.kb_search import HybridKbIndex
from assets.retrieval.recommend import FusionParams, Popularity, UserHistories
from assets.retrieval.recommender_inputs import IdCodec, RecommenderInputs
from serving.state import Capability, Recommender, ServingState


def hashed_words(texts: list[str], dim: int = 256) -> np.ndarray:
    """A bag-of-words text encoder (hashed words, unit length): real enough for API tests."""
    v = np.zeros((len(texts), dim), np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z0-9]+", str(t).lower()):
            v[i, zlib.crc32(w.encode()) % dim] += 1.0
    return l2_normalize(v)


def build_state(
    version: str = "1",
    n_entities: int = 300,
    n_interactions: int = 4000,
    n_users: int | None = None,
    entity_vectors: np.ndarray | None = None,
) -> ServingState:
    profiles = generate_profiles(n_entities, seed=1)
    enc = EntityEncoder.fit(profiles, EntityVectorParams(epochs=20))
    vecs = enc.encode(profiles)[0] if entity_vectors is None else entity_vectors
    entity_index = VectorIndex.build(profiles["entity_id"].to_numpy(np.int64), vecs, tune_sample=100)
    spec = SyntheticSpec(n_interactions=n_interactions, n_users=n_users, seed=3)
    df, _ = generate_interactions(spec)
    inter = ImplicitConversion("binary").apply(df)
    m = train_als("implicit", inter, AlsParams(rank=8, iterations=4))
    users = VectorIndex.build(m.user_ids, l2_normalize(m.user_factors), tune_sample=100)
    items = VectorIndex.build(m.item_ids, l2_normalize(m.item_factors), tune_sample=100)
    kb = generate_kb()
    docs = kb["docs"]
    kb_index = HybridKbIndex.build(docs, document_vectors(hashed_words, docs), "char")
    from assets.embeddings.item2vec import Item2VecParams, SessionSpec, fit_item2vec, sessionize

    i2v = fit_item2vec(sessionize(inter, SessionSpec.gap_seconds), inter, Item2VecParams(dim=16, epochs=3))
    inputs = RecommenderInputs(
        UserHistories.from_frame(inter),
        Popularity.from_frame(inter),
        FusionParams(),
        IdCodec(),
        ItemCatalog.from_frame(synthetic_catalog(item_communities(spec))),
    )
    caps = {
        c: Capability(f"recstack-{c}", version, "champion", f"idx-{version}")
        for c in ("entities", "lookalike", "kb", "recommend")
    }
    return ServingState(
        entity_index=entity_index,
        entity_profiles=profiles,
        encode_entities=lambda d: enc.encode(d)[0],
        user_index=users,
        item_index=items,
        audiences=ItemAudiences.from_frame(inter),
        kb_index=kb_index,
        kb_titles=dict(zip(docs["doc_id"].astype(int), docs["title"])),
        encode_texts=hashed_words,
        recommender=Recommender({"als": m, "item2vec": i2v}, inputs, {"als": version, "item2vec": version}),
        versions=caps,
    )


def kb_queries() -> pd.DataFrame:
    """Held-out queries of the synthetic KB (``query``, ``doc_id``)."""
    return generate_kb()["test"]
