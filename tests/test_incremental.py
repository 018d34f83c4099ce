"""Incremental updates on Milvus Lite and a real Milvus standalone server: the day's new entity is
served within one poll interval, a deleted one is gone, and the collection version is unchanged."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from assets.indexes import milvus_index
from assets.indexes.incremental import apply_profile_changes, synthetic_profile_changes, validate_changes
from assets.indexes.milvus_index import CollectionSpec, scalar_fields
from assets.indexes.neighbours import MilvusNeighbours
from recstack import names
from resources.milvus import milvus_client, release
from serving.app import create_app
from serving.state import ServingState, StateHolder
from tests.support import servers
from tests.support.serving_fixtures import build_state

pytestmark = [pytest.mark.milvus, pytest.mark.serving]
POLL_SECONDS = 5.0


@pytest.fixture(scope="module")
def base():
    return build_state(n_entities=300, n_interactions=2000)


@pytest.fixture(params=["lite", "server"])
def client(request, tmp_path):
    uri = str(tmp_path / "lite.db") if request.param == "lite" else request.getfixturevalue("milvus_server")
    c = milvus_client(uri)
    yield c
    servers.empty_milvus(c)
    release(uri)


def _publish(client, st) -> dict:
    ids = np.sort(st.entity_index.ids)
    x = st.entity_index.reconstruct(ids)
    spec = CollectionSpec(alias=names.MILVUS_ENTITIES, dim=int(x.shape[1]), index_type="IVF_FLAT")
    return milvus_index.publish(client, spec, ids, x, scalar_fields(st.entity_profiles, ids))


def _eventually(check, seconds: float):
    """``check()`` until it is truthy or ``seconds`` pass; the time it took (fails after)."""
    t0 = time.monotonic()
    while True:
        if check():
            return time.monotonic() - t0
        if time.monotonic() - t0 > seconds:
            pytest.fail(f"not visible within {seconds}s")
        time.sleep(0.1)


def test_a_new_entity_is_served_and_a_deleted_one_is_gone_with_no_rebuild(client, base):
    info = _publish(client, base)
    existing = base.entity_profiles["entity_id"].to_numpy(np.int64)
    changes = synthetic_profile_changes(existing, n_new=3, n_changed=2, n_deleted=2, seed=4)
    new = changes.loc[~changes["deleted"] & ~changes["entity_id"].isin(existing), "entity_id"].tolist()
    changed = changes.loc[~changes["deleted"] & changes["entity_id"].isin(existing), "entity_id"].tolist()
    gone = changes.loc[changes["deleted"], "entity_id"].tolist()
    assert len(new) == 3 and len(changed) == 2 and len(gone) == 2 and min(new) > existing.max()
    st = ServingState(
        entity_index=MilvusNeighbours(client, names.MILVUS_ENTITIES),
        encode_entities=base.encode_entities,
        versions={"entities": base.versions["entities"]},
        backend="milvus",
    )
    holder = StateHolder(lambda: st, lambda: ("fixed",), poll_seconds=POLL_SECONDS)
    with TestClient(create_app(holder, api_key="")) as api:
        assert api.post("/v1/similar", json={"entity_ids": new[:1], "k": 3}).status_code == 404
        out = apply_profile_changes(client, names.MILVUS_ENTITIES, base.encode_entities, changes)
        assert out["collection"] == info["collection"] == f"{names.MILVUS_ENTITIES}__v1"
        assert sorted(out["upserted_ids"]) == sorted(new + changed) and sorted(out["deleted_ids"]) == sorted(
            gone
        )
        # A text query equal to the new entity's own profile finds it first.
        row = changes[changes["entity_id"] == new[0]]
        text = {"text": row["description"].iloc[0], "k": 5}

        def served() -> bool:
            by_id = api.post("/v1/similar", json={"entity_ids": [new[0]], "k": 3})
            hits = api.post("/v1/similar", json=text).json()["results"][0]["ids"]
            return by_id.status_code == 200 and new[0] in hits

        _eventually(served, POLL_SECONDS)
        for g in gone:
            _eventually(
                lambda g=g: api.post("/v1/similar", json={"entity_ids": [g], "k": 3}).status_code == 404,
                POLL_SECONDS,
            )
        neighbours = api.post("/v1/similar", json={"entity_ids": existing[:20].tolist(), "k": 50}).json()
        assert not set(gone) & {i for r in neighbours["results"] for i in r["ids"]}
    assert holder.reloads == 1  # served without a reload: the alias answers with the updated rows
    # The changed entities now hold their new profiles' vectors; nothing was rebuilt.
    stored = MilvusNeighbours(client, names.MILVUS_ENTITIES).reconstruct(np.array(changed))
    fields = changes.set_index("entity_id").loc[changed].reset_index()
    np.testing.assert_allclose(stored, base.encode_entities(fields), atol=1e-5)
    assert milvus_index.versions(client, names.MILVUS_ENTITIES) == [1]
    assert milvus_index.serving_collection(client, names.MILVUS_ENTITIES) == info["collection"]
    assert milvus_index.count(client, info["collection"]) == 300 + 3 - 2


def test_a_bad_change_set_is_refused_before_anything_is_written(client, base):
    info = _publish(client, base)
    twice = pd.DataFrame({"entity_id": [1, 1], "description": ["a", "b"]})
    with pytest.raises(ValueError, match="changed twice"):
        apply_profile_changes(client, names.MILVUS_ENTITIES, base.encode_entities, twice)
    with pytest.raises(ValueError, match="needs a description"):
        validate_changes(pd.DataFrame({"entity_id": [5], "description": [None]}))
    wrong_dim = pd.DataFrame({"entity_id": [10_000], "description": ["银行"]})
    with pytest.raises(ValueError, match="rebuild instead"):
        apply_profile_changes(client, names.MILVUS_ENTITIES, lambda df: np.ones((len(df), 3)), wrong_dim)
    assert milvus_index.count(client, info["collection"]) == 300  # nothing written
