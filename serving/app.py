"""The recall API: ``POST /v1/similar``, ``/v1/lookalike``, ``/v1/kb/search``, ``/v1/recommend``;
``GET /healthz``, ``/readyz``.

Run locally with ``make serve`` (uvicorn on 127.0.0.1:8000; OpenAPI docs at ``/docs``); in
production with ``gunicorn -k uvicorn_worker.UvicornWorker serving.app:app`` (see ``k8s/``).
Set ``RECSTACK_API_KEY`` to require an ``X-API-Key`` header.
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from pymilvus.exceptions import MilvusException
from starlette.exceptions import HTTPException as StarletteHTTPException

from assets.features.online import online_features
from assets.ingest.catalog import ItemFilter
from assets.retrieval.lookalike_eval import Campaign, run_campaign
from assets.retrieval.recommend import recommend_users
from assets.retrieval.similar import similar
from recstack import names, settings
from resources.event_log import EventLog
from resources.feature_store.base import FeatureStore
from resources.feature_store.resource import deployment_backend, open_backend
from serving.batching import MicroBatcher
from serving.observability import (
    BATCH_SIZE,
    RequestMetrics,
    configure_access_log,
    metrics_payload,
    record_versions,
    request_id,
    set_served,
)
from serving.schemas import (
    Audience,
    ErrorDetail,
    FeaturesRequest,
    FeaturesResponse,
    FeedbackRequest,
    FeedbackResponse,
    Hits,
    ItemAttributes,
    KbHit,
    KbSearchRequest,
    KbSearchResponse,
    LookalikeRequest,
    LookalikeResponse,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    SimilarByIds,
    SimilarRequest,
    SimilarResponse,
    Versions,
)
from serving.state import ServingState, StateHolder, default_holder


def _versions(state: ServingState, cap: str) -> Versions:
    v = state.versions[cap]
    return Versions(
        model=v.model_name,
        model_version=v.model_version,
        alias=v.alias,
        index_version=v.index_version,
        index_model_version=v.index_model_version,
    )


ALL_STRATEGIES = ("u2u", "i2u2u", "i2i2u")
MODEL_OF_SOURCE = {"als": names.ALS_MODEL, "item2vec": names.ITEM2VEC_MODEL}


def _strategies(req: LookalikeRequest, st: ServingState) -> tuple[tuple[str, ...], str]:
    """The strategies a lookalike request runs, and why: as asked, or for ``default`` the
    backtest's best one that the request's seeds can run (``u2u`` needs users, the others items)."""
    if req.strategy == "all":
        return ALL_STRATEGIES, "all strategies, as asked"
    if req.strategy != "default":
        return (req.strategy,), "as asked"
    runnable = [
        s
        for s in (st.lookalike_ranking or ALL_STRATEGIES)
        if (req.seed_user_ids if s == "u2u" else req.seed_item_ids)
    ]
    best = (st.lookalike_ranking or ("",))[0]
    if not st.lookalike_ranking:
        return (runnable[0],), "no backtest published: the first strategy the seeds allow"
    note = "" if runnable[0] == best else f"; {best} needs {'seed users' if best == 'u2u' else 'seed items'}"
    return (runnable[0],), st.lookalike_reason + note


def _errors(*extra: int) -> dict:
    """The documented error answers of an endpoint: 401 (API key), 503 (not published yet), extras."""
    what = {
        401: "missing or wrong X-API-Key header",
        404: "unknown id(s), or an item attribute the catalogue does not have",
        503: "the capability is not being served yet, or its vector store failed to answer (retry)",
    }
    return {code: {"model": ErrorDetail, "description": what[code]} for code in (401, *extra, 503)}


def create_app(
    holder: StateHolder | None = None,
    api_key: str | None = None,
    event_log: EventLog | None = None,
    feature_store: FeatureStore | None = None,
) -> FastAPI:
    """The app over ``holder`` (default: this deployment's registry and store, polled for moves).

    ``event_log`` receives an impression per response and the posted feedback (default, with the
    default holder: ``RECSTACK_EVENT_LOG_ROOT``; with a given holder: none, and ``/v1/feedback``
    answers 503). ``feature_store`` answers ``/v1/features`` (default, with the default holder:
    this deployment's warehouse store; with a given holder: none, and it answers 503)."""
    settings.configure_process()
    if holder is None:
        holder = default_holder()
        event_log = event_log or EventLog(settings.event_log_root())
        feature_store = feature_store or open_backend(deployment_backend())
    api_key = api_key if api_key is not None else settings.api_key()

    def impression(endpoint: str, models: dict[str, str], ids: list, **extra) -> str:
        """The request's id, and the impression it names queued for the log (never awaited); the
        models that answered go to the request's metrics and access log line."""
        rid = request_id()
        record_versions(models)
        if event_log is not None:
            rec = {"request_id": rid, "endpoint": endpoint, "models": models, "ids": [str(i) for i in ids]}
            event_log.append("impressions", {**rec, **extra})
        return rid

    def served(st: ServingState, cap: str) -> dict[str, str]:
        v = st.versions[cap]
        return {v.model_name: v.model_version}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            holder.reload(force=True)
        except Exception:  # noqa: BLE001 - start anyway: /readyz says not ready until a reload succeeds
            import logging

            logging.getLogger(__name__).exception("initial load failed")
        holder.start()
        yield
        holder.stop()
        if event_log is not None:
            event_log.close()

    app = FastAPI(
        title="RecStack recall API",
        version="1",
        lifespan=lifespan,
        description="Similar entities, lookalike audiences and knowledge-base search over the champion "
        "models.",
    )
    app.state.holder = holder
    app.add_middleware(RequestMetrics)
    configure_access_log()

    def check_key(x_api_key: str | None = Header(default=None)) -> None:
        if api_key and not (x_api_key and hmac.compare_digest(x_api_key, api_key)):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    def kb_answer(key: tuple, items: list[tuple[ServingState, str]]) -> list:
        """One batch of KB searches: one state and one set of options (the key), one encoder
        pass over all the queries (see :mod:`serving.batching`)."""
        _, mode, rerank, k = key
        st, queries = items[0][0], [q for _, q in items]
        qv = st.encode_texts(queries) if mode not in ("bm25", "bm25_pr") else None
        ids, scores = st.kb_index.search(queries, qv, k=k, mode=mode, rerank=rerank)
        return list(zip(ids, scores))

    kb_batches = MicroBatcher(kb_answer, on_batch=BATCH_SIZE.labels("/v1/kb/search").observe)
    app.state.kb_batches = kb_batches

    def state_for(cap: str) -> ServingState:
        st = holder.state  # one read: the whole request sees one state
        if cap not in st.versions:
            raise HTTPException(503, f"{cap} is not being served: its model or index is not published yet")
        return st

    # Request validation is pydantic's (422 with the field). Only a body that cannot be parsed at
    # all (not UTF-8) reaches FastAPI's 400: it is invalid input like any other, so 422 too. A
    # failure of the vector store (Milvus) is the store's, not the request's: 503 with
    # Retry-After (seen under load: a transient "read binlog failed" on a query). No other error
    # is mapped: a bug in a handler is a 500, which the fuzz test would catch.
    @app.exception_handler(MilvusException)
    async def store_error(request: Request, e: MilvusException):
        import logging

        logging.getLogger(__name__).warning("vector store failed on %s: %s", request.url.path, e)
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": "1"},
            content={"detail": f"the vector store failed to answer ({type(e).__name__}: {e.message}); retry"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        if e.status_code == 400 and e.detail == "There was an error parsing the body":
            return JSONResponse(
                status_code=422,
                content={
                    "detail": [{"loc": ["body"], "msg": "the body is not UTF-8 JSON", "type": "json_invalid"}]
                },
            )
        return await http_exception_handler(request, e)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus exposition: requests, errors and latency per endpoint and model version, and
        the versions served (every gunicorn worker's, summed)."""
        set_served(holder.state.versions)
        body, content_type = metrics_payload()
        return Response(content=body, media_type=content_type)

    @app.get(
        "/readyz",
        responses={503: {"description": "not ready: a capability has no loaded model or index yet"}},
    )
    def readyz():
        st = holder.state
        body = {
            "ready": st.ready,
            "serving": {
                k: {**_versions(st, k).model_dump(), "index_matches_model": v.consistent}
                for k, v in st.versions.items()
            },
        }
        if "lookalike" in body["serving"]:
            body["serving"]["lookalike"]["default_strategy"] = (st.lookalike_ranking or ("",))[0]
            body["serving"]["lookalike"]["default_reason"] = st.lookalike_reason
        return JSONResponse(status_code=200 if st.ready else 503, content=body)

    @app.post(
        "/v1/similar",
        response_model=SimilarResponse,
        dependencies=[Depends(check_key)],
        responses=_errors(404),
    )
    async def similar_entities(req: SimilarRequest) -> SimilarResponse:
        # Async: an in-process id lookup is ~0.1 ms of index work, cheaper on the event loop than a
        # thread hop (under 32 concurrent clients the thread pool's GIL contention dominated p99).
        # Text, and any search in a remote store (Milvus), goes to a worker thread: it would block
        # the loop for every other request.
        st = state_for("entities")
        filters = req.filters.model_dump(exclude_none=True) if req.filters else None
        if filters and st.entity_index.native_filters and "tags" in filters:
            # The collections carry line, region and type; tags (a list per entity) are not stored.
            raise HTTPException(422, "the tags filter is not served by the Milvus backend")
        remote = st.entity_index.native_filters

        def answer(q, exclude):
            return similar(
                st.entity_index, q, req.k, exclude=exclude, profiles=st.entity_profiles, filters=filters
            )

        if isinstance(req, SimilarByIds):
            ids = np.asarray(req.entity_ids, np.int64)

            def by_ids():
                held, q = st.entity_index.lookup(ids)
                return (held, answer(q, ids)) if held.all() else (held, None)

            held, got = await run_in_threadpool(by_ids) if remote else by_ids()
            if got is None:
                raise HTTPException(404, f"unknown entity id(s): {ids[~held][:20].tolist()}")
            labels = req.entity_ids
        else:

            def by_text():
                return answer(st.encode_entities(pd.DataFrame({"description": [req.text]})), None)

            got, labels = await run_in_threadpool(by_text), [req.text]
        found, scores = got
        results = [
            Hits(query=label, ids=r[r >= 0].tolist(), scores=s[r >= 0].astype(float).tolist())
            for label, r, s in zip(labels, found, scores)
        ]
        rid = impression("similar", served(st, "entities"), [i for h in results for i in h.ids])
        return SimilarResponse(results=results, request_id=rid, versions=_versions(st, "entities"))

    @app.post(
        "/v1/lookalike",
        response_model=LookalikeResponse,
        dependencies=[Depends(check_key)],
        responses=_errors(404),
    )
    def lookalike(req: LookalikeRequest) -> LookalikeResponse:
        st = state_for("lookalike")
        users, items = np.asarray(req.seed_user_ids, np.int64), np.asarray(req.seed_item_ids, np.int64)
        bad_u, bad_i = users[~st.user_index.contains(users)], items[~st.item_index.contains(items)]
        if bad_u.size or bad_i.size:
            raise HTTPException(
                404, f"unknown seed id(s): users {bad_u[:20].tolist()}, items {bad_i[:20].tolist()}"
            )
        strategies, why = _strategies(req, st)
        camp = Campaign(
            seed_user_ids=tuple(req.seed_user_ids),
            seed_item_ids=tuple(req.seed_item_ids),
            size=req.size,
            exclude_user_ids=tuple(req.exclude_user_ids),
            strategies=strategies,
            allowed_users=tuple(req.allowed_user_ids) if req.allowed_user_ids is not None else None,
        )
        auds = run_campaign(camp, st.audiences, st.user_index, st.item_index)
        out = [
            Audience(strategy=s, user_ids=ids.tolist(), scores=sc.astype(float).tolist())
            for s, (ids, sc) in auds.items()
        ]
        rid = impression("lookalike", served(st, "lookalike"), [u for a in out for u in a.user_ids])
        return LookalikeResponse(
            audiences=out, strategy_reason=why, request_id=rid, versions=_versions(st, "lookalike")
        )

    @app.post(
        "/v1/kb/search",
        response_model=KbSearchResponse,
        dependencies=[Depends(check_key)],
        responses=_errors(),
    )
    async def kb_search(req: KbSearchRequest) -> KbSearchResponse:
        st = state_for("kb")
        key = (id(st), req.mode, req.rerank, req.k)  # the state is held by the item while it waits
        ids, scores = await kb_batches.submit(key, (st, req.query), remote=st.kb_index.dense is not None)
        reranked = req.mode == "hybrid" and req.rerank and st.kb_index.reranker is not None
        hits = [
            KbHit(doc_id=int(i), title=st.kb_titles.get(int(i), ""), score=float(s))
            for i, s in zip(ids, scores)
            if i >= 0
        ]
        rid = impression("kb", served(st, "kb"), [h.doc_id for h in hits])
        return KbSearchResponse(
            hits=hits, mode=req.mode, reranked=reranked, request_id=rid, versions=_versions(st, "kb")
        )

    @app.post(
        "/v1/features",
        response_model=FeaturesResponse,
        dependencies=[Depends(check_key)],
        responses=_errors(),
    )
    async def features(req: FeaturesRequest) -> FeaturesResponse:
        """An entity's latest window features and today's real-time counts, read from the feature
        store at request time; an unknown entity is ``found: false`` with empty features. Async:
        a row get per entity on the local store is cheaper on the event loop than a thread hop;
        a remote store (HBase) goes to a worker thread."""
        if feature_store is None:
            raise HTTPException(503, "no feature store is configured for this service")
        ids = [str(e) for e in req.entity_ids]
        try:
            if getattr(feature_store, "remote", True):
                rows = await run_in_threadpool(online_features, feature_store, ids, req.realtime)
            else:
                rows = online_features(feature_store, ids, req.realtime)
        except KeyError as e:  # a table the warehouse has not created yet
            raise HTTPException(503, f"the warehouse has not written its features yet ({e})") from None
        return FeaturesResponse(request_id=request_id(), entities=rows)

    @app.post(
        "/v1/recommend",
        response_model=RecommendResponse,
        dependencies=[Depends(check_key)],
        responses=_errors(404),
    )
    def recommend(req: RecommendRequest) -> RecommendResponse:
        # The batch asset's function, on one user: the same fusion, filters and fallback.
        st = state_for("recommend")
        rec = st.recommender.for_user(str(req.user_id))  # the champion, or the challenger's share
        codec = rec.inputs.codec
        # An id that cannot be one here is a user no model knows (popularity), an item nobody has.
        user = np.array([codec.to_internal_user(req.user_id)], np.int64)
        blocked = codec.to_internal_items(req.blocklist) if req.blocklist else None
        wanted = req.item_attributes or ItemAttributes()
        try:
            item_filter = ItemFilter(rec.inputs.catalog, *wanted.filters())
        except ValueError as e:  # an attribute the catalogue lacks: unknown, like an unknown id
            raise HTTPException(404, str(e)) from None
        out = recommend_users(
            user,
            rec.models,
            rec.inputs.fusion,
            req.k,
            rec.inputs.popularity,
            seen=rec.inputs.histories if req.exclude_seen else None,
            blocked=blocked,
            item_filter=item_filter,
        )
        ok = out.item_ids[0] >= 0
        items = [
            RecommendedItem(item_id=i, score=float(s), source=src)
            for i, s, src in zip(
                codec.original_items(out.item_ids[0][ok]), out.scores[0][ok], out.sources[0][ok]
            )
        ]
        f = rec.inputs.fusion
        models = {MODEL_OF_SOURCE[k]: v for k, v in rec.versions.items()}
        rid = impression("recommend", models, [i.item_id for i in items], user_id=str(req.user_id))
        return RecommendResponse(
            user_id=str(req.user_id),
            items=items,
            reason=str(out.reasons[0]),
            fusion=f"{f.method} (ALS weight {f.als_weight}, popularity weight {f.popularity_weight})",
            sources=rec.versions,
            request_id=rid,
            versions=_versions(st, "recommend").model_copy(
                update={"model_version": rec.versions.get("als", "")}
            ),
        )

    @app.post(
        "/v1/feedback",
        response_model=FeedbackResponse,
        dependencies=[Depends(check_key)],
        responses=_errors(),
    )
    def feedback(req: FeedbackRequest) -> FeedbackResponse:
        """Clicks and conversions on served items, by the response's ``request_id``: appended to
        the log that ``online_metrics`` reads."""
        if event_log is None:
            raise HTTPException(503, "feedback is not being recorded: this service has no event log")
        for e in req.events:
            event_log.append(
                "feedback", {"request_id": e.request_id, "item_id": str(e.item_id), "event": e.event}
            )
        return FeedbackResponse(accepted=len(req.events))

    return app


def __getattr__(name: str):
    # `serving.app:app` for uvicorn/gunicorn, built on first access (importing this module stays cheap).
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
