"""Per-user recommendations: fusion arithmetic, filters, fallbacks, ids, and the validation choice."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from assets.embeddings.factor_model import FactorModel
from assets.evaluation.fusion import choose_fusion, compare_methods, fusion_grid, time_split
from assets.ingest.catalog import ItemCatalog
from assets.retrieval.recommend import FusionParams, Popularity, UserHistories, fuse, recommend_users
from assets.retrieval.recommender_inputs import IdCodec, RecommenderInputs
from tests.support.factor_models import random_factor_model


def _lists(rows):
    """(ids, scores) from rows of (id, score) pairs, -1 padded."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), -1, np.int64)
    sc = np.full((len(rows), width), -np.inf, np.float32)
    for i, r in enumerate(rows):
        for j, (a, b) in enumerate(r):
            ids[i, j], sc[i, j] = a, b
    return ids, sc


def test_rrf_adds_weighted_reciprocal_ranks():
    als = _lists([[(1, 0.9), (2, 0.8), (3, 0.1)]])
    i2v = _lists([[(3, 0.99), (4, 0.5)]])
    ids, scores, bits = fuse({"als": als, "item2vec": i2v}, FusionParams("rrf", als_weight=0.5, rrf_k=60), 4)
    # 3: 0.5/63 + 0.5/61 beats 1: 0.5/61; then 2: 0.5/62 = 4: 0.5/62, tied -> lower id first.
    assert ids[0].tolist() == [3, 1, 2, 4]
    np.testing.assert_allclose(scores[0], [0.5 / 63 + 0.5 / 61, 0.5 / 61, 0.5 / 62, 0.5 / 62], rtol=1e-6)
    assert bits[0].tolist() == [3, 1, 1, 2]  # als=1, item2vec=2, both=3


def test_weighted_sum_normalises_each_list():
    als = _lists([[(1, 10.0), (2, 5.0), (3, 0.0)]])
    i2v = _lists([[(3, 0.9), (2, 0.1)]])
    ids, scores, _ = fuse({"als": als, "item2vec": i2v}, FusionParams("weighted", als_weight=0.75), 3)
    # als: 1 -> 1, 2 -> 0.5, 3 -> 0; item2vec: 3 -> 1, 2 -> 0.
    want = {1: 0.75, 2: 0.375, 3: 0.25}
    assert ids[0].tolist() == [1, 2, 3]
    np.testing.assert_allclose(scores[0], [want[i] for i in ids[0]], rtol=1e-6)


_model = random_factor_model


ITEMS = np.arange(100, 140)
SEEN = pd.DataFrame(
    {"user_id": [1, 1, 2, 5, 5, 5, 6], "item_id": [100, 101, 102, 100, 103, 104, 105], "ts": range(7)}
)


def test_filters_fallbacks_and_reasons():
    als, i2v = _model([1, 2, 3], ITEMS, 1), _model([2, 3, 4], ITEMS, 2)
    pop = Popularity.from_frame(pd.concat([SEEN, SEEN.assign(item_id=110)]))
    recs = recommend_users(
        np.array([1, 2, 4, 5, 9]),
        {"als": als, "item2vec": i2v},
        FusionParams(),
        k=30,
        popular=pop,
        seen=UserHistories.from_frame(SEEN),
        blocked=np.array([106, 107]),
    )
    frame = recs.to_frame()
    by_user = {u: g for u, g in frame.groupby("user_id")}
    seen = SEEN.groupby("user_id")["item_id"].apply(set).to_dict()
    for u, g in by_user.items():
        assert not set(g["item_id"]) & seen.get(u, set()), u  # seen items never come back
        assert not set(g["item_id"]) & {106, 107}, u  # nor blocked ones
        assert g["item_id"].is_unique and g["rank"].tolist() == list(range(1, len(g) + 1))
    assert dict(zip(recs.user_ids, recs.reasons)) == {
        1: "als only",
        2: "fused",
        4: "item2vec only",
        5: "popularity: unknown to the models",
        9: "popularity: unknown to the models",
    }
    # A user neither model knows gets the popular items not seen, most popular first.
    assert by_user[5]["item_id"].tolist() == [110, 101, 102, 105] and set(by_user[5]["source"]) == {
        "popularity"
    }
    assert by_user[9]["item_id"].tolist() == [110, 100, 101, 102, 103, 104, 105]
    # User 1's ALS list (40 items, 2 seen, 2 blocked) leaves 36, short of 30? no: 30 from ALS.
    assert len(by_user[1]) == 30 and set(by_user[1]["source"]) == {"als"}
    # Fused rows say which lists agreed.
    assert set(by_user[2]["source"]) <= {"als", "item2vec", "als+item2vec"}


def test_a_short_list_is_filled_from_popularity_below_every_model_score():
    als = _model([1], ITEMS[:5], 3)  # five items only
    pop = Popularity.from_frame(pd.DataFrame({"item_id": [120, 120, 121, 100], "user_id": 0, "ts": 0}))
    recs = recommend_users(np.array([1]), {"als": als}, FusionParams("als"), 8, pop)
    f = recs.to_frame()
    assert f["source"].tolist() == ["als"] * 5 + ["popularity"] * 2
    assert f["item_id"].tolist()[5:] == [120, 121]  # 100 is already in the ALS list
    assert (f["score"].iloc[5:] < f["score"].iloc[:5].min()).all()


def test_trending_weighs_recent_interactions():
    df = pd.DataFrame({"item_id": [1, 1, 1, 2, 2], "user_id": 0, "ts": [0, 0, 0, 100 * 86400, 100 * 86400]})
    assert Popularity.from_frame(df).item_ids.tolist() == [1, 2]
    assert Popularity.from_frame(df, half_life_days=10).item_ids.tolist() == [2, 1]


def test_time_split_holds_out_the_latest_and_keeps_cold_users():
    df = pd.DataFrame({"user_id": [1, 1, 2, 3, 1], "item_id": [10, 11, 12, 13, 10], "ts": [1, 2, 3, 9, 10]})
    train, test = time_split(df, 0.3)
    assert train["ts"].max() < test["ts"].min()
    assert sorted(test["user_id"]) == [3]  # user 1's repeat of item 10 is not a discovery
    with pytest.raises(ValueError):
        time_split(df, 1.0)


def _planted(n_users=400, n_items=60, seed=0):
    """Users in two camps, each preferring half the catalogue, over 100 days."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        camp = u % 2
        items = rng.choice(np.arange(camp * 30, camp * 30 + 30), 8, replace=False)
        days = np.sort(rng.uniform(0, 100, 8))
        rows += [(u, int(i), float(d * 86400)) for i, d in zip(items, days)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    return df.assign(confidence=1.0)


def _camp_model(df: pd.DataFrame, informative: bool) -> FactorModel:
    """A model that knows the camps (informative) or scores at random."""
    users, items = np.unique(df["user_id"]), np.unique(df["item_id"])
    if informative:
        uf = np.stack([(users % 2 == 0), (users % 2 == 1)], 1).astype(np.float32)
        itf = np.stack([items < 30, items >= 30], 1).astype(np.float32)
        itf += np.random.default_rng(1).normal(0, 0.01, itf.shape).astype(np.float32)
    else:
        rng = np.random.default_rng(2)
        uf, itf = rng.normal(size=(len(users), 2)), rng.normal(size=(len(items), 2))
    return FactorModel(users, uf.astype(np.float32), items, itf.astype(np.float32), {})


def test_validation_adopts_a_confirmed_gain_and_keeps_the_default_otherwise():
    df = _planted()
    good = lambda d: {"als": _camp_model(d, True), "item2vec": _camp_model(d, False)}  # noqa: E731
    chosen, trials = choose_fusion(df, good, k=10, validation_fraction=0.2)
    assert chosen.method == "als" or chosen.als_weight > 0.5  # the informative list dominates
    assert sum(t["chosen"] for t in trials) == 1 and len(trials) == len(fusion_grid())
    # Two identical lists: reweighting them changes nothing, so the default stays.
    same = lambda d: {"als": _camp_model(d, True), "item2vec": _camp_model(d, True)}  # noqa: E731
    grid = [replace(FusionParams(), als_weight=w) for w in (0.25, 0.75)]
    chosen, trials = choose_fusion(df, same, k=10, validation_fraction=0.2, grid=grid)
    assert chosen == FusionParams() and [t["gain_over_default"] for t in trials] == [0.0, 0.0, 0.0]


def test_compare_scores_every_test_user_cold_ones_included():
    df = _planted()
    cold = pd.DataFrame(
        {"user_id": [9001, 9002], "item_id": [0, 31], "ts": [200 * 86400.0] * 2, "confidence": 1.0}
    )
    full = pd.concat([df, cold], ignore_index=True)
    train, test = time_split(full, 0.1)
    models = {"als": _camp_model(train, True), "item2vec": _camp_model(train, False)}
    res = compare_methods(train, test, models, FusionParams("als"), k=10)
    assert res["fused"]["n_users"] == test["user_id"].nunique() and res["fused"]["cold_users"] == 2
    assert res["als"]["ndcg@10"] > res["popularity"]["ndcg@10"] > 0
    assert res["als"]["ndcg@10"] > res["item2vec"]["ndcg@10"]
    assert res["fused"] == res["als"]  # the fusion here is ALS alone


def test_inputs_round_trip_and_original_ids(tmp_path):
    id_map = pd.DataFrame(
        {"column": ["user_id", "item_id", "item_id"], "original": ["alice", "m-1", "m-2"], "id": [7, 11, 12]}
    )
    codec = IdCodec.from_id_map(id_map, "stable_hash")
    assert codec.original_items(np.array([12, 11, 99])).tolist() == ["m-2", "m-1", "99"]
    assert codec.original_users(np.array([7])).tolist() == ["alice"]
    inp = RecommenderInputs(
        UserHistories.from_frame(SEEN),
        Popularity.from_frame(SEEN, 5.0),
        replace(FusionParams(), depth=7),
        codec,
        ItemCatalog.from_frame(
            pd.DataFrame({"item_id": [11, 12], "attribute": "genre", "value": ["a", "b"]})
        ),
    )
    inp.save(tmp_path / "r")
    back = RecommenderInputs.load(tmp_path / "r")
    assert back.catalog.blocked(np.array([11, 12]), only={"genre": ["b"]}).tolist() == [11]
    assert back.fusion == inp.fusion and back.codec.mapping == "stable_hash"
    assert back.popularity.item_ids.tolist() == inp.popularity.item_ids.tolist()
    assert sorted(back.histories.pairs(np.array([5]))["item_id"]) == [100, 103, 104]
    assert isinstance(back.histories.user_ids, np.memmap)
    assert IdCodec().original_items(np.array([3])).tolist() == ["3"]


def test_the_shared_item_space_survives_concurrent_first_lookups():
    """The service's threads share the cached item index. pandas builds an index's hash table
    lazily and not thread-safely (pandas-dev/pandas#21150): eight threads looking up in a fresh
    index at once got "Reindexing only valid with uniquely valued Index objects" in about a third
    of the rounds, until the table was built before the index was cached."""
    import threading

    from assets.retrieval.recommend import _item_space

    failed = []
    for round_ in range(100):
        arrays = [np.arange(20_000, dtype=np.int64) + round_, np.arange(5_000, dtype=np.int64)]
        barrier = threading.Barrier(8)

        def look(arrays=arrays, barrier=barrier, last=19_999 + round_):
            barrier.wait()
            try:  # the space is 0 .. last, so each id is its own position
                got = _item_space(arrays).get_indexer(np.array([5, 7, last], np.int64))
                assert got.tolist() == [5, 7, last], got
            except Exception as e:  # noqa: BLE001 - collected, asserted below
                failed.append((last, repr(e)))

        threads = [threading.Thread(target=look) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failed == []
