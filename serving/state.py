"""What the service serves: models by alias from the MLflow registry, indexes from the store.

A :class:`ServingState` is immutable once built; the app swaps the whole object when something
moves, so a request always sees one consistent set of model and index versions.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assets.indexes.neighbours import Neighbours
from assets.retrieval.audiences import ItemAudiences
from assets.retrieval.kb_search import HybridKbIndex
from assets.retrieval.recommender_inputs import RecommenderInputs
from recstack import names

log = logging.getLogger(__name__)

ALIASES = (names.CHAMPION, names.CHALLENGER)  # the first that exists is served
MODELS = {
    "entities": names.ENTITY_MODEL,
    "lookalike": names.ALS_MODEL,
    "kb": names.TWO_TOWER_MODEL,
    "recommend": names.ALS_MODEL,  # with item2vec beside it (Recommender.versions)
}
# Every model whose alias moving changes what is served.
WATCHED_MODELS = (*dict.fromkeys(MODELS.values()), names.ITEM2VEC_MODEL)
# What each capability reads from the store, per serve backend (the first asset's manifest
# carries the vectors' model version).
ASSETS = {
    "faiss": {
        "entities": (names.FAISS_INDEX_ENTITIES, names.ENTITY_PROFILES),
        "lookalike": (
            names.FAISS_INDEX_ALS_USERS,
            names.FAISS_INDEX_ALS_ITEMS,
            names.ITEM_AUDIENCES,
            names.LOOKALIKE_EVALUATION,
        ),
        "kb": (names.KB_DOCUMENTS, names.KB_DOC_VECTORS, names.KB_SEARCH_FUSION),
        "recommend": (names.RECOMMENDER_INPUTS,),
    },
    "milvus": {
        "entities": (names.MILVUS_COLLECTION_ENTITIES,),
        "lookalike": (
            names.MILVUS_COLLECTION_ALS_USERS,
            names.MILVUS_COLLECTION_ALS_ITEMS,
            names.ITEM_AUDIENCES,
            names.LOOKALIKE_EVALUATION,
        ),
        "kb": (names.MILVUS_COLLECTION_KB, names.KB_DOCUMENTS, names.KB_DOC_VECTORS, names.KB_SEARCH_FUSION),
        # The factor models are model weights, not an index: both backends hold them in-process.
        "recommend": (names.RECOMMENDER_INPUTS,),
    },
}
MILVUS_ALIASES = {
    names.MILVUS_COLLECTION_ENTITIES: names.MILVUS_ENTITIES,
    names.MILVUS_COLLECTION_ALS_USERS: names.MILVUS_ALS_USERS,
    names.MILVUS_COLLECTION_ALS_ITEMS: names.MILVUS_ALS_ITEMS,
    names.MILVUS_COLLECTION_KB: names.MILVUS_KB,
}


@dataclass(frozen=True)
class Capability:
    """One servable thing, with the versions it was built from."""

    model_name: str
    model_version: str
    alias: str
    index_version: str
    index_model_version: str = ""  # the model version the served index was built from

    @property
    def consistent(self) -> bool:
        """Whether the index was built from the served model version (an alias that moved is
        consistent again once the sensor-triggered rebuild has published)."""
        return not self.index_model_version or self.index_model_version == self.model_version


@dataclass(frozen=True)
class Recommender:
    """What ``/v1/recommend`` needs: the served factor models and the shared inputs.

    ``challenger`` (the models behind the ``challenger`` aliases, where they differ from the
    champions) serves the users whose id hashes below ``challenger_share``: the online half of
    champion/challenger.
    """

    models: dict
    inputs: RecommenderInputs
    versions: dict[str, str]
    challenger: Recommender | None = None
    challenger_share: float = 0.0

    def for_user(self, user: str) -> Recommender:
        """The variant that serves ``user`` (a stable split by a hash of the id)."""
        if self.challenger is None or self.challenger_share <= 0:
            return self
        bucket = int(hashlib.blake2b(user.encode(), digest_size=8).hexdigest(), 16) / 2**64
        return self.challenger if bucket < self.challenger_share else self


@dataclass(frozen=True)
class ServingState:
    """Everything requests read. Any capability may be missing (its endpoint then answers 503)."""

    entity_index: Neighbours | None = None
    entity_profiles: pd.DataFrame | None = None  # the Faiss backend's filter fields
    encode_entities: Callable[[pd.DataFrame], np.ndarray] | None = None
    user_index: Neighbours | None = None
    item_index: Neighbours | None = None
    audiences: ItemAudiences | None = None
    # The backtest's strategies, best first, and why: a request naming none gets the first its
    # seeds can run.
    lookalike_ranking: tuple[str, ...] = ()
    lookalike_reason: str = ""
    kb_index: HybridKbIndex | None = None
    kb_titles: dict[int, str] = field(default_factory=dict)
    encode_texts: Callable[[list[str]], np.ndarray] | None = None
    recommender: Recommender | None = None
    versions: dict[str, Capability] = field(default_factory=dict)
    backend: str = "faiss"

    @property
    def ready(self) -> bool:
        return bool(self.versions)


def fingerprint(store_root: str, tracking_uri: str, backend: str = "faiss") -> tuple:
    """What the served state depends on: alias versions and published index versions."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient
    from resources.storage import VersionedStore

    client = MlflowClient(tracking_uri)
    parts = []
    for name in WATCHED_MODELS:
        for alias in ALIASES:  # both: a new challenger is served to its share of users
            try:
                parts.append((name, alias, str(client.get_model_version_by_alias(name, alias).version)))
            except MlflowException:
                continue
    store = VersionedStore(store_root)
    for keys in ASSETS[backend].values():
        for k in keys:
            m = store.current([k])
            parts.append((k, m["version"] if m else None))
    return tuple(parts)


def _alias_version(client, name: str) -> tuple[str, str] | None:
    from mlflow.exceptions import MlflowException

    for alias in ALIASES:
        try:
            return alias, str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            continue
    return None


def _load_entities(store, model, backend: str, milvus) -> tuple[dict, str]:
    encode = {"encode_entities": lambda df, m=model: np.asarray(m.predict(df), np.float32)}
    if backend == "milvus":
        index = milvus(names.MILVUS_COLLECTION_ENTITIES)
        return {"entity_index": index, **encode}, _built_from(store, names.MILVUS_COLLECTION_ENTITIES)
    index = store.read([names.FAISS_INDEX_ENTITIES])
    kw = dict(entity_index=index, entity_profiles=store.read([names.ENTITY_PROFILES]), **encode)
    return kw, str(index.params.get("vectors_model_version", ""))


def _load_lookalike(store, backend: str, milvus) -> tuple[dict, str]:
    audiences = store.read([names.ITEM_AUDIENCES])
    if backend == "milvus":
        users, items = milvus(names.MILVUS_COLLECTION_ALS_USERS), milvus(names.MILVUS_COLLECTION_ALS_ITEMS)
        built_from = _built_from(store, names.MILVUS_COLLECTION_ALS_USERS)
    else:
        users, items = store.read([names.FAISS_INDEX_ALS_USERS]), store.read([names.FAISS_INDEX_ALS_ITEMS])
        built_from = str(users.params.get("vectors_model_version", ""))
    ranking, reason = backtest_ranking(store.read([names.LOOKALIKE_EVALUATION]))
    return {
        "user_index": users,
        "item_index": items,
        "audiences": audiences,
        "lookalike_ranking": ranking,
        "lookalike_reason": reason,
    }, built_from


def backtest_ranking(evaluation: dict) -> tuple[tuple[str, ...], str]:
    """The lookalike backtest's strategies by audience recall, best first, and the sentence that
    says so (``lookalike_evaluation``'s output)."""
    m = {s: v for s, v in evaluation["metrics"].items() if s != "most_active"}
    ranking = tuple(sorted(m, key=lambda s: -m[s]["recall"]))
    size = evaluation.get("size", "")
    figures = ", ".join(f"{s} {m[s]['recall']:.3f}" for s in ranking)
    base = evaluation["metrics"].get("most_active", {}).get("recall")
    reason = f"backtest winner: audience recall@{size} {figures}" + (
        f" (most active users {base:.3f})" if base is not None else ""
    )
    return ranking, reason


def _load_kb(store, model, backend: str, milvus) -> tuple[dict, str]:
    from assets.embeddings.vectors import table_to_vectors

    docs = pd.DataFrame(store.read([names.KB_DOCUMENTS])["docs"])
    ids, vecs, md = table_to_vectors(store.read([names.KB_DOC_VECTORS]))
    docs = docs.set_index("doc_id").loc[ids].reset_index()
    stages = store.read([names.KB_SEARCH_FUSION])  # KbStages: fusion, second stage
    index = stages.apply(HybridKbIndex.build(docs, vecs, md.get("tokenizer", "char")))
    built_from = str(md.get("model_version", ""))
    if backend == "milvus":  # the vectors were needed for the PageRank prior only; Milvus holds them
        index = index.with_dense_store(milvus(names.MILVUS_COLLECTION_KB))
        built_from = _built_from(store, names.MILVUS_COLLECTION_KB)
    return {
        "kb_index": index,
        "kb_titles": dict(zip(docs["doc_id"].astype(int), docs["title"])),
        "encode_texts": lambda texts, m=model: np.asarray(m.predict(list(texts)), np.float32),
    }, built_from


def _load_recommender(store, client, challenger_share: float = 0.0) -> tuple[dict, str]:
    """The ALS and item2vec models behind their served aliases (arrays from ``.npz``), the
    published inputs (the seen-items CSR memory-mapped) and, with ``challenger_share`` > 0, the
    challenger models where they differ."""
    import mlflow
    from assets.embeddings.factor_model import FactorModel

    def models_at(pick) -> tuple[dict, dict]:
        models, versions = {}, {}
        for source, name in (("als", names.ALS_MODEL), ("item2vec", names.ITEM2VEC_MODEL)):
            version = pick(name)
            if version is None:
                continue
            local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")
            models[source] = FactorModel.load(f"{local}/artifacts/factors")
            versions[source] = version
        return models, versions

    inputs = store.read([names.RECOMMENDER_INPUTS])
    served = models_at(lambda n: (_alias_version(client, n) or (None, None))[1])
    challenger = None
    if challenger_share > 0:
        alt = models_at(lambda n: _version_at(client, n, names.CHALLENGER) or served[1].get(_source_of(n)))
        if alt[1] != served[1]:
            challenger = Recommender(*alt[:1], inputs, alt[1])
    rec = Recommender(served[0], inputs, served[1], challenger, challenger_share)
    return {"recommender": rec}, ""


def _source_of(model_name: str) -> str:
    return {names.ALS_MODEL: "als", names.ITEM2VEC_MODEL: "item2vec"}[model_name]


def _version_at(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _built_from(store, publish_asset: str) -> str:
    return str(store.read([publish_asset]).get("vectors_model_version", ""))


def load_state(
    store_root: str,
    tracking_uri: str,
    backend: str = "faiss",
    milvus_uri: str = "",
    milvus_token: str = "",
    challenger_share: float = 0.0,
) -> ServingState:
    """Build the state from the registry and the store; a capability whose model or indexes are
    missing is left out (logged), never half-loaded.

    Parameters
    ----------
    store_root, tracking_uri : str
        The IO manager's root and the MLflow registry.
    backend : {"faiss", "milvus"}
        ``faiss``: the published Faiss indexes are loaded into this process. ``milvus``: searches
        go to the published collections through their aliases (``milvus_uri``); this process
        holds no index, no profiles and no interactions, only the memory-mapped item audiences.
    challenger_share : float
        The share of ``/v1/recommend`` users served the challenger models (0: champions only).
    """
    import mlflow
    from mlflow import MlflowClient
    from resources.storage import VersionedStore

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client, store = MlflowClient(tracking_uri), VersionedStore(store_root)

    def milvus(publish_asset: str) -> Neighbours:
        from assets.indexes.neighbours import MilvusNeighbours
        from resources.milvus import milvus_client

        return MilvusNeighbours(milvus_client(milvus_uri, milvus_token), MILVUS_ALIASES[publish_asset])

    kw: dict = {}
    versions: dict[str, Capability] = {}
    for cap, name in MODELS.items():
        av = _alias_version(client, name)
        manifests = [store.current([k]) for k in ASSETS[backend][cap]]
        if av is None or not all(manifests):
            log.warning(
                "not serving %s: model %s has no champion/challenger, or an index is not published", cap, name
            )
            continue
        alias, version = av
        try:
            if cap == "lookalike":
                part, built_from = _load_lookalike(store, backend, milvus)
            elif cap == "recommend":
                part, built_from = _load_recommender(store, client, challenger_share)
            else:
                model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
                loader = _load_entities if cap == "entities" else _load_kb
                part, built_from = loader(store, model, backend, milvus)
        except Exception:  # noqa: BLE001 - one broken capability must not take the others down
            log.exception("could not load %s", cap)
            continue
        kw.update(part)
        versions[cap] = Capability(
            name, version, alias, "+".join(m["version"] for m in manifests), built_from
        )
        if not versions[cap].consistent:
            log.warning(
                "%s: serving %s v%s with an index built from v%s (a rebuild is due)",
                cap,
                name,
                version,
                built_from,
            )
    return ServingState(versions=versions, backend=backend, **kw)


class StateHolder:
    """The served state and its reload: poll (or ``reload()``), build aside, swap atomically."""

    def __init__(
        self,
        loader: Callable[[], ServingState],
        fingerprint_fn: Callable[[], tuple] | None = None,
        poll_seconds: float = 30.0,
    ):
        self._loader, self._fingerprint, self.poll_seconds = loader, fingerprint_fn, poll_seconds
        self.state = ServingState()
        self._seen: tuple | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.reloads = 0

    def reload(self, force: bool = False) -> bool:
        """Load a new state if what it depends on moved (or ``force``); True if swapped."""
        with self._lock:
            fp = self._fingerprint() if self._fingerprint else None
            if not force and fp is not None and fp == self._seen:
                return False
            new = self._loader()  # built while requests keep reading the old state
            self.state, self._seen = new, fp  # one reference assignment: atomic for readers
            self.reloads += 1
            # Move everything loaded so far (the stack's modules, the state) out of the collector's
            # reach: full collections over them were the service's p99 (98 ms -> 14 ms measured).
            gc.collect()
            gc.freeze()
            log.info(
                "serving %s",
                {k: f"{v.model_name}@{v.alias} v{v.model_version}" for k, v in new.versions.items()},
            )
            return True

    def start(self) -> None:
        if self._fingerprint is None or self.poll_seconds <= 0:
            return

        def loop():
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.reload()
                except Exception:  # noqa: BLE001 - keep serving the old state; try again next poll
                    log.exception("reload failed; still serving the previous state")

        threading.Thread(target=loop, name="recstack-reload", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def default_holder() -> StateHolder:
    """The holder for this deployment: ``RECSTACK_HOME`` storage, MLflow (``MLFLOW_TRACKING_URI``)
    and the serve backend (``RECSTACK_SERVE_BACKEND``, with ``RECSTACK_MILVUS_URI``)."""
    from recstack import settings

    root, uri, backend = settings.storage_root(), settings.mlflow_tracking_uri(), settings.serve_backend()
    milvus = (settings.milvus_uri(), settings.milvus_token())
    share = settings.challenger_share()
    return StateHolder(
        lambda: load_state(root, uri, backend, *milvus, challenger_share=share),
        lambda: fingerprint(root, uri, backend),
        settings.serve_poll_seconds(),
    )
