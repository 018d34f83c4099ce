"""The recall service on the Milvus backend, against Milvus Lite and a real Milvus standalone server.

The same small state as the Faiss tests, its vectors published to exact (``FLAT``) collections:
every endpoint must answer with the ids the in-process Faiss backend gives, the worker must hold
no index, no profiles and no interactions, and request text in filters can only ever be a value.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from assets.indexes import milvus_index
from assets.indexes.faiss_index import VectorIndex
from assets.indexes.milvus_index import CollectionSpec, scalar_fields
from assets.indexes.neighbours import MilvusNeighbours, filter_expression
from assets.retrieval.audiences import ItemAudiences
from assets.retrieval.kb_fusion import KbFusionParams
from recstack import names
from resources.milvus import milvus_client, release
from serving.app import create_app
from serving.state import ServingState, StateHolder
from tests.support import servers
from tests.support.serving_fixtures import build_state

pytestmark = [pytest.mark.milvus, pytest.mark.serving]

# Values a request might send as a filter: each must match only itself, never widen the search.
HOSTILE = ['x" or id >= 0 or region == "', "or 1==1", "]) or (1==1", "back\\slash", '"', '上海" || true']


@pytest.fixture(scope="module")
def faiss_state():
    st = build_state(n_entities=300, n_interactions=4000)
    p = st.entity_profiles.copy()
    # Plant the hostile values as real locations of a few entities: a filter on one must return
    # exactly those entities, and a value that no entity has must return nothing.
    for i, v in enumerate(HOSTILE[:4]):
        p.loc[p.index[i * 7 : i * 7 + 3], "location"] = v
    # A fused hybrid (not the vector default), so the store path's fusion over fetched vectors is
    # compared with the in-process one.
    kb = st.kb_index.with_fusion(KbFusionParams("weighted", "bm25_pr", 0.5, depth=5))
    return dataclasses.replace(st, entity_profiles=p, kb_index=kb)


def _vectors(index: VectorIndex) -> tuple[np.ndarray, np.ndarray]:
    ids = np.sort(index.ids)
    return ids, index.reconstruct(ids)


def publish_state(client, st: ServingState) -> ServingState:
    """Publish ``st``'s vectors to exact collections; the Milvus-backed state over them."""
    flat = {"index_type": "FLAT", "metric": "IP"}
    ids, x = _vectors(st.entity_index)
    specs = {}
    for alias, (i, v, sc) in {
        names.MILVUS_ENTITIES: (ids, x, scalar_fields(st.entity_profiles, ids)),
        names.MILVUS_ALS_USERS: (*_vectors(st.user_index), None),
        names.MILVUS_ALS_ITEMS: (*_vectors(st.item_index), None),
        names.MILVUS_KB: (st.kb_index.doc_ids, st.kb_index.doc_vecs, None),
    }.items():
        specs[alias] = CollectionSpec(alias=alias, dim=int(v.shape[1]), **flat)
        milvus_index.publish(client, specs[alias], i, v, sc)
    return ServingState(
        entity_index=MilvusNeighbours(client, names.MILVUS_ENTITIES),
        encode_entities=st.encode_entities,
        user_index=MilvusNeighbours(client, names.MILVUS_ALS_USERS),
        item_index=MilvusNeighbours(client, names.MILVUS_ALS_ITEMS),
        audiences=st.audiences,
        kb_index=st.kb_index.with_dense_store(MilvusNeighbours(client, names.MILVUS_KB)),
        kb_titles=st.kb_titles,
        encode_texts=st.encode_texts,
        versions=st.versions,
        backend="milvus",
    )


@pytest.fixture(scope="module", params=["lite", "server"])
def milvus_state(request, faiss_state, tmp_path_factory):
    if request.param == "lite":
        uri = str(tmp_path_factory.mktemp("milvus-lite") / "serve.db")
    else:
        uri = request.getfixturevalue("milvus_server")
    client = milvus_client(uri)
    yield publish_state(client, faiss_state)
    servers.empty_milvus(client)
    release(uri)


def _client(st: ServingState) -> TestClient:
    return TestClient(create_app(StateHolder(lambda: st), api_key=""))


def test_the_milvus_state_holds_no_index_no_profiles_and_no_interactions(milvus_state):
    held = {f.name: getattr(milvus_state, f.name) for f in dataclasses.fields(milvus_state)}
    assert not [k for k, v in held.items() if isinstance(v, (VectorIndex, pd.DataFrame))]
    assert milvus_state.entity_profiles is None and milvus_state.kb_index.doc_vecs is None
    assert isinstance(milvus_state.audiences, ItemAudiences)
    assert all(isinstance(milvus_state.__dict__[k], MilvusNeighbours) for k in ("entity_index", "user_index"))


def test_every_endpoint_answers_as_the_faiss_backend(milvus_state, faiss_state):
    eids = np.sort(faiss_state.entity_index.ids)[:3].tolist()
    users = np.sort(faiss_state.user_index.ids)[:5].tolist()
    items = np.sort(faiss_state.item_index.ids)[:2].tolist()
    requests = [
        ("/v1/similar", {"entity_ids": eids, "k": 7}),
        ("/v1/similar", {"text": "银行 贷款 理财", "k": 5}),
        ("/v1/similar", {"entity_ids": eids[:1], "k": 5, "filters": {"location": "上海", "type": "国企"}}),
        ("/v1/lookalike", {"seed_user_ids": users, "seed_item_ids": items, "size": 40, "strategy": "all"}),
        ("/v1/kb/search", {"query": "how do i reset my card", "k": 5, "mode": "hybrid"}),
        ("/v1/kb/search", {"query": "card lost abroad", "k": 5, "mode": "vector"}),
    ]
    with _client(faiss_state) as f, _client(milvus_state) as m:
        for path, body in requests:
            a, b = f.post(path, json=body), m.post(path, json=body)
            assert a.status_code == b.status_code == 200, (path, body, b.text)
            ja, jb = a.json(), b.json()
            if path == "/v1/similar":
                assert [r["ids"] for r in jb["results"]] == [r["ids"] for r in ja["results"]], body
                assert any(r["ids"] for r in ja["results"])
            elif path == "/v1/lookalike":
                got = {x["strategy"]: x["user_ids"] for x in jb["audiences"]}
                want = {x["strategy"]: x["user_ids"] for x in ja["audiences"]}
                assert got == want and set(want) == {"u2u", "i2u2u", "i2i2u"} and all(want.values())
            else:
                assert [h["doc_id"] for h in jb["hits"]] == [h["doc_id"] for h in ja["hits"]] != []
                np.testing.assert_allclose(
                    [h["score"] for h in jb["hits"]], [h["score"] for h in ja["hits"]], atol=1e-4
                )


@pytest.mark.parametrize("value", HOSTILE)
def test_a_filter_value_is_only_ever_a_value(milvus_state, faiss_state, value):
    """Quotes, ``or 1==1`` and brackets select the entities whose location is that exact text (the
    planted ones), and nothing for a text no entity has: the same ids as the exact filtered search."""
    p = faiss_state.entity_profiles
    have = set(p.loc[p["location"] == value, "entity_id"].astype(int))
    assert bool(have) == (value in HOSTILE[:4])  # the premise: planted values exist, others do not
    q = {"text": "银行 贷款 理财", "k": 20, "filters": {"location": value}}
    with _client(faiss_state) as f, _client(milvus_state) as m:
        a, b = f.post("/v1/similar", json=q), m.post("/v1/similar", json=q)
    assert a.status_code == b.status_code == 200, b.text
    got, want = b.json()["results"][0]["ids"], a.json()["results"][0]["ids"]
    assert got == want and set(got) == have


def test_filter_expressions_quote_every_value_and_name_known_fields_only():
    assert filter_expression({"location": 'a"b', "type": ["x", "y\\"]}, ids=[3, 5]) == (
        'region in ["a\\"b"] and type in ["x", "y\\\\"] and id in [3, 5]'
    )
    assert filter_expression() == "" and filter_expression({"line": "01"}) == 'line in ["01"]'
    with pytest.raises(ValueError, match="unknown filter field 'id or 1==1'"):
        filter_expression({"id or 1==1": "x"})
    with pytest.raises(TypeError):
        filter_expression({"type": [1]})


def test_the_tags_filter_is_a_clear_422_on_milvus(milvus_state):
    with _client(milvus_state) as m:
        r = m.post("/v1/similar", json={"text": "银行", "k": 3, "filters": {"tags": "上市"}})
    assert r.status_code == 422 and "tags" in r.json()["detail"]


def test_unknown_ids_are_404_on_milvus(milvus_state):
    with _client(milvus_state) as m:
        r = m.post("/v1/similar", json={"entity_ids": [987_654_321], "k": 3})
        assert r.status_code == 404 and "987654321" in r.json()["detail"]
        r = m.post("/v1/lookalike", json={"seed_item_ids": [987_654_321], "size": 5})
        assert r.status_code == 404
