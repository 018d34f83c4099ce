"""Similar entities by id and by free text, with structured filters."""

import numpy as np
import pandas as pd
import pytest

from assets.embeddings.entity_vectors import EntityEncoder, EntityVectorParams
from assets.indexes.faiss_index import VectorIndex
from assets.ingest.entities import generate_profiles
from assets.retrieval.similar import similar, similar_to_entities


@pytest.fixture(scope="module")
def setup():
    profiles = generate_profiles(400, seed=1)
    enc = EntityEncoder.fit(profiles, EntityVectorParams(epochs=40))
    vecs, _ = enc.encode(profiles)
    return profiles, enc, VectorIndex.build(profiles["entity_id"].to_numpy(np.int64), vecs)


def test_by_id_excludes_itself_and_finds_its_industry(setup):
    profiles, _, index = setup
    ids, scores = similar_to_entities(index, profiles["entity_id"].to_numpy()[:20], k=10)
    assert ids.shape == (20, 10) and not (ids == profiles["entity_id"].to_numpy()[:20, None]).any()
    ind = profiles.set_index("entity_id")["industry"]
    same = np.mean(
        [(ind[row].to_numpy() == ind[q]).mean() for q, row in zip(profiles["entity_id"][:20], ids)]
    )
    assert same > 0.8 and np.all(np.diff(scores, axis=1) <= 1e-6)
    with pytest.raises(KeyError, match="unknown entity id"):
        similar_to_entities(index, np.array([999_999]))


def test_free_text_and_filters(setup):
    profiles, enc, index = setup
    q, _ = enc.encode(pd.DataFrame({"description": ["银行 贷款 理财 保险"]}))
    ids, _ = similar(index, q, k=10)
    ind = profiles.set_index("entity_id")["industry"]
    assert (ind[ids[0]] == "金融").mean() >= 0.8
    f = {"location": "上海", "type": ["国企", "民营"]}
    ids, _ = similar(index, q, k=5, profiles=profiles, filters=f)
    p = profiles.set_index("entity_id")
    match = p[(p["location"] == "上海") & p["type"].isin(["国企", "民营"])].index
    assert len(match) >= 5 and (ids[0] >= 0).all()  # enough matches: five hits, none padding
    assert set(ids[0].tolist()) <= set(match.tolist())
    # The five best of the matches by exact cosine, not just any five.
    vec = dict(zip(index.ids.tolist(), index.reconstruct(index.ids)))
    best = sorted(match, key=lambda i: -float(vec[i] @ q[0]))[:5]
    assert ids[0].tolist() == best
    tagged, _ = similar(index, q, k=400, profiles=profiles, filters={"tags": "独角兽"})
    got = tagged[0][tagged[0] >= 0]
    expected = set(profiles.loc[profiles["tags"].map(lambda t: "独角兽" in t), "entity_id"].tolist())
    assert (
        expected and set(got.tolist()) == expected and len(got) == len(expected)
    )  # every match, then padding
    with pytest.raises(ValueError, match="unknown filter field"):
        similar(index, q, profiles=profiles, filters={"colour": "red"})
