"""The serving state of the load benchmark, at a size: built once on disk, loaded by each worker.

``n`` entities (64-d) and ``n`` users (32-d) in clusters, 10,000 items (32-d), five items per
user as the item audiences, and the synthetic knowledge base with a default (scratch) two-tower
encoder. :func:`build_world` writes the vectors and, for the Faiss backend, the indexes;
:func:`publish_world` publishes the same vectors to Milvus behind the serving aliases. A gunicorn
worker's state comes from :func:`load_world`, for the backend ``RECSTACK_SERVE_BACKEND`` names, as
in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recstack import names, settings

N_ITEMS = 10_000
ITEMS_PER_USER = 5


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(200, d)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for a in range(0, n, 250_000):  # in blocks: one copy of the matrix at most
        b = min(n, a + 250_000)
        out[a:b] = c[rng.integers(0, 200, b - a)] + 0.3 * rng.normal(size=(b - a, d)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def build_world(folder: Path, n: int, seed: int = 0) -> dict:
    """Write the world of size ``n`` under ``folder``; returns what it holds."""
    from assets.embeddings.text import document_vectors
    from assets.indexes.faiss_index import VectorIndex
    from assets.ingest.kb import generate_kb
    from assets.retrieval.audiences import ItemAudiences

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    tables = {
        "entities": (ids, _clustered(n, 64, seed)),
        "users": (ids, _clustered(n, 32, seed + 1)),
        "items": (np.arange(N_ITEMS, dtype=np.int64), _clustered(N_ITEMS, 32, seed + 2)),
    }
    info = {"n": n}
    for name, (i, x) in tables.items():
        np.save(folder / f"{name}_ids.npy", i)
        np.save(folder / f"{name}_vectors.npy", x)
        index = VectorIndex.build(i, x, tune_sample=500, target_recall=0.95)
        index.save(folder / f"faiss_{name}")
        info[name] = {"rows": len(i), "dim": int(x.shape[1]), "faiss": index.params["index_type"]}
    import pandas as pd

    users = np.repeat(ids, ITEMS_PER_USER)
    items = np.minimum(rng.zipf(1.3, len(users)) - 1, N_ITEMS - 1)
    pairs = pd.DataFrame({"user_id": users, "item_id": items})
    ItemAudiences.from_frame(pairs).save(folder / "audiences")
    from assets.retrieval.recommend import FusionParams, Popularity, UserHistories
    from assets.retrieval.recommender_inputs import IdCodec, RecommenderInputs

    RecommenderInputs(
        UserHistories.from_frame(pairs), Popularity.from_frame(pairs), FusionParams(), IdCodec()
    ).save(folder / "recommender")
    kb = generate_kb()
    docs = kb["docs"]
    encoder = _kb_encoder(kb["train"])
    encoder.save(folder / "kb_encoder")
    kb_vecs = document_vectors(encoder.encode, docs)
    docs.to_json(folder / "kb_docs.jsonl", orient="records", lines=True, force_ascii=False)
    np.save(folder / "kb_vectors.npy", kb_vecs)
    (folder / "kb_queries.json").write_text(json.dumps(kb["test"]["query"].tolist(), ensure_ascii=False))
    _kb_stages(docs, kb_vecs, kb["train"], encoder).save(folder / "kb_stages")
    info["kb_docs"] = len(docs)
    (folder / "world.json").write_text(json.dumps(info))
    return info


def _kb_encoder(train):
    """The KB's query and document encoder: the default two-tower (scratch, characters; dim 128 as
    the FAQ benchmarks'), one epoch on 4,000 training pairs. Serving it costs what the default
    pipeline's query encoding costs; how well it ranks is not what the load test measures."""
    from assets.embeddings.two_tower import TwoTowerParams, train_two_tower

    pairs = train.head(4000)
    tt = TwoTowerParams(dim=128, out_dim=128, max_epochs=1, val_fraction=0.0, max_len=32)
    return train_two_tower(pairs["query"].tolist(), pairs["positive"].tolist(), pairs["doc_id"].tolist(), tt)


def _kb_stages(docs, doc_vecs, train, first):
    """The heaviest second stage, fitted on the training queries whatever validation would say:
    LambdaRank over the fused top 20 with a second encoder's features (a copy of ``first`` trained
    one epoch on the first stage's hard negatives). The load test measures what serving it costs
    (the ``kb_rerank`` endpoint: one more query encoding and the trees), not whether it helps."""
    from assets.retrieval.kb_fusion import KbFusionParams
    from assets.retrieval.kb_rerank import KbReranker, KbRerankParams, first_stage
    from assets.retrieval.kb_search import HybridKbIndex
    from assets.retrieval.kb_second_encoder import KbSecondEncoderParams, train_second_encoder
    from assets.retrieval.kb_stages import KbStages

    index = HybridKbIndex.build(docs, doc_vecs, "char")
    pairs = train.head(4000)
    second = train_second_encoder(first, pairs, docs, KbFusionParams(), KbSecondEncoderParams(epochs=1))
    q = train.drop_duplicates("query").head(1000)
    texts = q["query"].tolist()
    lexical = index.lexical_stages(texts)
    params = KbRerankParams(second_encoder=True)
    cos = first.encode(texts) @ index.doc_vecs.T
    pos, feats = first_stage(lexical, cos, KbFusionParams(), index.pr, texts, index.titles, params.depth)
    feats = KbReranker(None, params, second).features(feats, texts, index._ids(pos))
    column = {int(d): i for i, d in enumerate(index.doc_ids)}
    relevant = np.array([column[int(d)] for d in q["doc_id"]])
    reranker = KbReranker.fit(feats, (pos == relevant[:, None]).astype(np.float32), params, second)
    return KbStages(reranker=reranker)


ALIASES = {
    "entities": names.MILVUS_ENTITIES,
    "users": names.MILVUS_ALS_USERS,
    "items": names.MILVUS_ALS_ITEMS,
    "kb": names.MILVUS_KB,
}


def publish_world(folder: Path, uri: str) -> dict:
    """Publish the world's vectors to the Milvus at ``uri`` (IVF_SQ8, nlist ~4·√n, nprobe tuned
    to recall 0.95); returns each publish's summary."""
    from assets.indexes.milvus_index import CollectionSpec, publish
    from resources.milvus import milvus_client

    client = milvus_client(uri)
    out = {}
    for name, alias in ALIASES.items():
        if name == "kb":
            import pandas as pd

            ids = pd.read_json(folder / "kb_docs.jsonl", lines=True)["doc_id"].to_numpy(np.int64)
            x = np.load(folder / "kb_vectors.npy")
        else:
            ids, x = (
                np.load(folder / f"{name}_ids.npy"),
                np.load(folder / f"{name}_vectors.npy", mmap_mode="r"),
            )
        spec = CollectionSpec(alias=alias, dim=int(x.shape[1]), index_type="IVF_SQ8")
        info = publish(client, spec, ids, x)
        out[name] = {
            k: info[k] for k in ("collection", "rows", "nlist", "nprobe", "recall@10", "publish_seconds")
        }
    return out


def load_world(folder: Path, backend: str, uri: str = ""):
    """The serving state a worker builds: Faiss indexes loaded, or Milvus aliases queried."""
    import pandas as pd

    from assets.indexes.faiss_index import VectorIndex
    from assets.retrieval.audiences import ItemAudiences
    from assets.retrieval.kb_search import HybridKbIndex
    from assets.retrieval.kb_stages import KbStages
    from serving.state import Capability, ServingState

    docs = pd.read_json(folder / "kb_docs.jsonl", lines=True)
    kb = HybridKbIndex.build(docs, np.load(folder / "kb_vectors.npy"), "char")
    if (folder / "kb_stages").exists():
        kb = KbStages.load(folder / "kb_stages").apply(kb)
    if backend == "milvus":
        from assets.indexes.neighbours import MilvusNeighbours
        from resources.milvus import milvus_client

        client = milvus_client(uri)
        stores = {k: MilvusNeighbours(client, a) for k, a in ALIASES.items()}
        kb = kb.with_dense_store(stores.pop("kb"))
    else:
        stores = {k: VectorIndex.load(folder / f"faiss_{k}") for k in ("entities", "users", "items")}
    from assets.embeddings.factor_model import FactorModel
    from assets.embeddings.two_tower import TwoTower
    from assets.retrieval.recommender_inputs import RecommenderInputs
    from serving.state import Recommender

    # The ALS users' and items' vectors as both sources (the same cost as two distinct models).
    uids, uvecs = np.load(folder / "users_ids.npy"), np.load(folder / "users_vectors.npy", mmap_mode="r")
    iids, ivecs = np.load(folder / "items_ids.npy"), np.load(folder / "items_vectors.npy")
    model = FactorModel(uids, uvecs, iids, ivecs, {})
    rec = Recommender(
        {"als": model, "item2vec": model},
        RecommenderInputs.load(folder / "recommender"),
        {"als": "1", "item2vec": "1"},
    )
    caps = {
        c: Capability(f"bench-{c}", "1", "champion", "bench")
        for c in ("entities", "lookalike", "kb", "recommend")
    }
    return ServingState(
        recommender=rec,
        entity_index=stores["entities"],
        user_index=stores["users"],
        item_index=stores["items"],
        audiences=ItemAudiences.load(folder / "audiences"),
        kb_index=kb,
        kb_titles=dict(zip(docs["doc_id"].astype(int), docs["title"])),
        encode_texts=TwoTower.load(folder / "kb_encoder").encode,
        versions=caps,
        backend=backend,
    )


def app():
    """``gunicorn 'benchmarks.serve_world:app()'``: the world in ``RECSTACK_BENCH_WORLD``."""
    from resources.event_log import EventLog
    from serving.app import create_app
    from serving.state import StateHolder

    folder = Path(settings.env("RECSTACK_BENCH_WORLD"))
    backend, uri = settings.serve_backend(), settings.milvus_uri()
    # Impressions and feedback are logged as in production (batches under the world's folder).
    return create_app(
        StateHolder(lambda: load_world(folder, backend, uri)),
        api_key="",
        event_log=EventLog(str(folder / "events")),
    )
