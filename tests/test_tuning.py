"""Tuning: seeded, budgeted, validated by the evaluation's rule, confirmed before adoption, and
never looks at the test split."""

import numpy as np
import pandas as pd
import pytest

from assets.embeddings.als import AlsParams, train_als
from assets.evaluation.offline import SplitSpec, split_interactions
from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from assets.tuning.protocol import TuningProtocol, confirmation_and_folds, confirmed_search, rolled_back
from assets.tuning.search import SearchSpace, ndcg_score, tune_als


def _data(split=SplitSpec("last_n", n=1)):
    df, _ = generate_interactions(SyntheticSpec(n_interactions=15_000, n_communities=6, seed=3))
    return split_interactions(ImplicitConversion("binary").apply(df), split)


def _keys(df):
    return pd.MultiIndex.from_frame(df[["user_id", "item_id", "ts"]])


def test_tuning_is_seeded_budgeted_and_blind_to_test():
    train, test = _data()
    seen = []

    def score(model, fit, val):
        seen.append((len(fit), len(val)))
        return ndcg_score(10)(model, fit, val)

    space = SearchSpace(rank=(4, 32), iterations=(3, 8))
    calls = []
    proto = TuningProtocol(folds=3, patience=None)
    a = tune_als(
        train, score, n_trials=4, seed=1, space=space, on_trial=lambda *x: calls.append(x), protocol=proto
    )
    b = tune_als(train, ndcg_score(10), n_trials=4, seed=1, space=space, protocol=proto)
    assert [t[2] for t in a["trials"]] == [t[2] for t in b["trials"]]  # seeded: the same trials
    assert len(a["trials"]) == 4 and len(calls) == 4
    search, confirm, folds = confirmation_and_folds(train, SplitSpec("last_n", n=1), 3)
    # 4 trials x 3 folds, then the defaults and the winner on the confirmation split (or just the
    # defaults when they won): each on its own split of train.
    fold_sizes = [(len(f), len(v)) for f, v in folds]
    assert seen[:12] == fold_sizes * 4
    assert set(seen[12:]) == {(len(search), len(confirm))} and len(seen) == 12 + (
        1 if a["best_params"] == a["baseline_params"] else 2
    )
    held = [v for _, v in folds] + [confirm]
    for part in [search, confirm, *[f for f, _ in folds], *held]:
        assert not _keys(part).isin(_keys(test)).any()  # the test split is never seen
    for f, v in folds:
        assert not _keys(f).isin(_keys(confirm)).any() and not _keys(v).isin(_keys(confirm)).any()
    # The defaults are trial 0 (clipped into the space); confirmation compares against them unclipped.
    assert a["trials"][0][2] == {"rank": 32, "reg": 0.05, "alpha": 10.0, "iterations": 8}
    assert a["baseline_params"] == {"rank": 32, "reg": 0.05, "alpha": 10.0, "iterations": 12, "seed": 1}
    # Then the engines' documented defaults (Spark's, and at implicit's rank), clipped the same way:
    # the rank bound of this data is a quarter of its items.
    top = a["rank_bound"]
    assert [t[2] for t in a["trials"][1:3]] == [
        {"rank": min(10, top), "reg": 0.1, "alpha": 1.0, "iterations": 8},
        {"rank": min(32, top), "reg": 0.1, "alpha": 1.0, "iterations": 8},
    ]
    assert a["default_value"] == a["trials"][0][1]
    best = [ndcg_score(10)(train_als("implicit", f, AlsParams(**a["best_params"])), f, v) for f, v in folds]
    assert a["best_value"] == pytest.approx(np.mean(best))  # a trial's score is its mean over the folds


def test_last_n_folds_step_back_in_time_and_never_see_their_future():
    train, _ = _data()
    search, confirm, folds = confirmation_and_folds(train, SplitSpec("last_n", n=1), 3)
    last_ts = train.groupby("user_id")["ts"].max()
    # The confirmation is each user's last training interaction; the folds hold out the ones before.
    assert (confirm.set_index("user_id")["ts"] == last_ts.reindex(confirm["user_id"])).all()
    for j, (fit, val) in enumerate(folds):
        v = val.set_index("user_id")["ts"]
        assert (
            fit.groupby("user_id")["ts"].max().reindex(v.index) <= v
        ).all()  # fit ends before its hold-out
        if j:
            prev = folds[j - 1][1].set_index("user_id")["ts"]
            both = v.index.intersection(prev.index)
            assert len(both) and (v[both] <= prev[both]).all()
    assert rolled_back(train, 0) is train
    one = rolled_back(pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 7], "ts": [1, 2, 3]}), 5)
    assert one.to_dict("list") == {
        "user_id": [1, 2],
        "item_id": [5, 7],
        "ts": [1, 3],
    }  # users keep their first


def test_random_folds_are_distinct_draws_of_the_evaluations_fraction():
    from dataclasses import replace

    split = SplitSpec("random", test_fraction=0.25, seed=7)
    train, test = _data(split)
    search, confirm, folds = confirmation_and_folds(train, split, 3)
    exp_search, exp_confirm = split_interactions(train, replace(split, seed=8))
    pd.testing.assert_frame_equal(confirm, exp_confirm)
    pd.testing.assert_frame_equal(search, exp_search)
    for j, (fit, val) in enumerate(folds):
        pd.testing.assert_frame_equal(val, split_interactions(search, replace(split, seed=9 + j))[1])
        assert not _keys(val).isin(_keys(confirm)).any() and not _keys(fit).isin(_keys(confirm)).any()
    a, b = (set(map(tuple, v[["user_id", "item_id"]].to_numpy())) for v in (folds[0][1], folds[1][1]))
    assert a and len(a & b) < 0.5 * len(a)  # different draws, not one hold-out repeated


def _toy_search(
    fold_score, n_trials=12, protocol=TuningProtocol(folds=2, confirm_margin=0.02, patience=None)
):
    return confirmed_search(
        lambda t: {"x": t.suggest_float("x", 0.0, 1.0)},
        fold_score,
        ["f0", "f1"],
        "confirm",
        {"x": 0.5},
        {"x": 0.5},
        n_trials,
        seed=0,
        protocol=protocol,
    )


def test_a_winner_that_loses_on_confirmation_is_not_adopted():
    """Validation rewards a degenerate setting (x near 1); confirmation prefers the defaults."""
    res = _toy_search(lambda p, fold: -abs(p["x"] - 0.5) if fold == "confirm" else p["x"])
    assert (
        res["best_trial"] != 0
        and res["best_params"]["x"] > 0.5
        and res["best_value"] == max(v for _, v, _ in res["trials"])
    )
    assert res["adopted"] is False
    assert res["confirmation"]["default"] == 0.0 and res["confirmation"]["tuned"] < 0
    from assets.common.tuned import adopted_fields, params_source

    assert adopted_fields({**res, "searched": ["x"]}) == {} and "kept the defaults" in params_source(
        "t", True, res
    )


def test_a_winner_that_confirms_by_the_margin_is_adopted_and_one_below_it_is_not():
    res = _toy_search(lambda p, fold: 1.0 + p["x"])  # same preference on every split
    assert res["adopted"] is True and res["confirmation"]["tuned"] == 1.0 + res["best_params"]["x"]
    assert res["confirmation"]["lift"] == pytest.approx(res["confirmation"]["tuned"] / 1.5)
    from assets.common.tuned import adopted_fields

    assert adopted_fields({**res, "searched": ["x"]}) == {"x": res["best_params"]["x"]}
    # A gain smaller than the margin keeps the defaults.
    small = _toy_search(
        lambda p, fold: 100.0 + p["x"], protocol=TuningProtocol(folds=2, confirm_margin=0.05, patience=None)
    )
    assert small["best_trial"] != 0 and small["confirmation"]["tuned"] > small["confirmation"]["default"]
    assert small["adopted"] is False


def test_fold_scores_are_averaged_and_the_search_stops_when_stale():
    seen = []

    def fold_score(p, fold):
        seen.append(fold)
        return {"f0": 1.0, "f1": 3.0, "confirm": 0.0}[fold] - p[
            "x"
        ]  # the defaults (0.5) are hard to beat by luck

    res = _toy_search(fold_score, n_trials=50, protocol=TuningProtocol(folds=2, patience=3))
    assert res["default_value"] == pytest.approx(1.5)  # mean of 0.5 and 2.5
    assert res["stopped_early"] and len(res["trials"]) == res["best_trial"] + 4
    assert seen[:2] == ["f0", "f1"]
    with pytest.raises(ValueError, match="folds"):
        TuningProtocol(folds=0)
    with pytest.raises(ValueError, match="confirm_margin"):
        TuningProtocol(confirm_margin=-0.1)
    with pytest.raises(ValueError, match="patience"):
        TuningProtocol(patience=0)


def test_rank_is_bounded_by_the_data():
    from assets.tuning.search import rank_bound

    df = pd.DataFrame({"user_id": np.repeat(np.arange(40), 5), "item_id": np.arange(200) % 60, "ts": 0})
    assert rank_bound(df, SearchSpace(rank=(4, 128))) == 10  # a quarter of 40 users
    assert rank_bound(df, SearchSpace(rank=(12, 128))) == 12 and rank_bound(df, SearchSpace(rank=(2, 8))) == 8


def test_als_config_takes_the_tuned_parameters_unless_told_not_to():
    from assets.embeddings.als_assets import AlsConfig

    best = {"rank": 73, "reg": 0.03, "alpha": 1.1, "iterations": 17, "seed": 0}
    tuned = {"best_params": best, "searched": ["rank", "reg", "alpha", "iterations"], "adopted": True}
    p = AlsConfig(seed=5).params(tuned)
    assert (p.rank, p.reg, p.alpha, p.iterations, p.seed) == (73, 0.03, 1.1, 17, 5)
    assert AlsConfig(use_tuned=False, rank=9).params(tuned).rank == 9
    assert AlsConfig(rank=9).params(None).rank == 9  # no tuning output: the config's values
    kept = AlsConfig(rank=9, alpha=2.0).params({**tuned, "adopted": False})  # confirmation kept the defaults
    assert (kept.rank, kept.alpha, kept.iterations) == (9, 2.0, 12)


def test_ndcg_all_users_counts_users_without_a_vector_as_zero():
    from assets.embeddings.als import AlsParams, train_als
    from assets.embeddings.factor_model import FactorModel
    from assets.evaluation.offline import evaluate_als_vs_popularity
    from assets.tuning.search import ndcg_all_users

    train, test = _data()
    m = train_als("implicit", train, AlsParams(rank=8, iterations=4))
    full = ndcg_all_users(m, train, test)
    # Serving every user, it is the ordinary metric.
    assert full == pytest.approx(evaluate_als_vs_popularity(train, test, m, 10)["als"]["ndcg@10"])
    half = len(m.user_ids) // 2
    part = FactorModel(m.user_ids[:half], m.user_factors[:half], m.item_ids, m.item_factors, {})
    p = ndcg_all_users(part, train, test)
    assert 0 < p < full  # the dropped users' hits are lost, not averaged away
    best_part = evaluate_als_vs_popularity(train, test[test["user_id"].isin(part.user_ids)], part, 10)["als"][
        "ndcg@10"
    ]
    assert p < best_part  # the mean over served users alone would flatter it
    assert (
        ndcg_all_users(
            FactorModel(m.user_ids[:0], m.user_factors[:0], m.item_ids, m.item_factors, {}), train, test
        )
        == 0.0
    )


def test_item2vec_tuning_is_seeded_blind_to_test_and_beats_bad_defaults():
    from assets.embeddings.item2vec import Item2VecParams
    from assets.embeddings.item2vec_assets import Item2VecConfig
    from assets.tuning.search import Item2VecSpace, tune_item2vec

    train, test = _data()
    # Poor but trainable defaults: a window of 1, 2 negatives and a recency half-life of 15 minutes.
    # Trial 0 trains and scores above 0, so "beats the defaults" compares against a real model.
    bad = Item2VecParams(
        dim=16, epochs=5, window=1, negative=2, min_count=8, recency_half_life_days=0.01, seed=0
    )
    space = Item2VecSpace(min_count=(1, 40))
    calls = []
    proto = TuningProtocol(folds=2, patience=None)
    a = tune_item2vec(
        train,
        bad,
        gap_seconds=10**9,
        n_trials=6,
        seed=2,
        space=space,
        on_trial=lambda *x: calls.append(x),
        protocol=proto,
    )
    b = tune_item2vec(train, bad, gap_seconds=10**9, n_trials=6, seed=2, space=space, protocol=proto)
    assert [t[2] for t in a["trials"]] == [t[2] for t in b["trials"]] and a["best_value"] == b["best_value"]
    assert a["trials"][0][2] == {"window": 1, "negative": 2, "min_count": 8, "recency_half_life_days": 0.01}
    assert a["default_value"] > 0 and a["trials"][0][1] == a["default_value"]
    assert len(calls) == 6 and a["best_value"] > a["default_value"]
    # Poor defaults lose on confirmation too, so the winner is adopted.
    assert a["adopted"] and a["confirmation"]["tuned"] > a["confirmation"]["default"] > 0
    best = Item2VecParams(**a["best_params"])
    assert (best.dim, best.epochs) == (16, 5)  # not searched: kept from the base
    # The model config takes the searched fields only, unless told not to.
    tuned = {**a, "adopted": True, "searched": ["window", "negative", "min_count", "recency_half_life_days"]}
    p = Item2VecConfig(dim=8).params(tuned)
    assert (p.dim, p.window, p.min_count) == (8, best.window, best.min_count)
    assert Item2VecConfig(use_tuned=False, window=7).params(tuned).window == 7
    assert Item2VecConfig(window=7).params({}).window == 7


def test_a_trial_that_fails_to_train_fails_the_search(monkeypatch):
    """Only "nothing to train" (min_count above every count) scores 0; a training error propagates."""
    import assets.embeddings.item2vec as i2v
    from assets.embeddings.item2vec import Item2VecParams
    from assets.tuning.search import Item2VecSpace, tune_item2vec

    train, _ = _data()
    base = Item2VecParams(dim=8, epochs=1, min_count=1, seed=0)
    degenerate = tune_item2vec(
        train,
        Item2VecParams(dim=8, epochs=1, min_count=10_000, seed=0),
        gap_seconds=10**9,
        n_trials=1,
        space=Item2VecSpace(min_count=(1, 10_000)),
    )
    assert degenerate["default_value"] == 0.0

    def broken(*a, **k):
        raise RuntimeError("planted training bug")

    monkeypatch.setattr(i2v, "fit_item2vec", broken)
    with pytest.raises(RuntimeError, match="planted training bug"):
        tune_item2vec(train, base, gap_seconds=10**9, n_trials=2, space=Item2VecSpace())


def test_two_tower_tuning_holds_training_queries_out_and_is_seeded(monkeypatch):
    import assets.embeddings.two_tower as tt
    from assets.embeddings.two_tower_assets import TwoTowerConfig
    from assets.evaluation.faq import holdout
    from assets.ingest.kb import generate_kb
    from assets.tuning.search import TwoTowerSpace, tune_two_tower

    kb = generate_kb(n_docs=12, questions_per_doc=6)
    data = {"train": kb["train"], "train_docs": kb["docs"]}
    seen_queries = []
    real = tt.train_two_tower

    def spy(queries, positives, groups=None, params=None, corpus=None, validate=None):
        seen_queries.append((set(queries), set(positives), set(corpus)))
        return real(queries, positives, groups, params, corpus=corpus, validate=validate)

    monkeypatch.setattr(tt, "train_two_tower", spy)
    base = tt.TwoTowerParams(dim=16, out_dim=16, heads=2, layers=1, batch_size=8, max_epochs=2, seed=0)
    space = TwoTowerSpace(max_epochs=(1, 3))
    a = tune_two_tower(data, base, n_trials=3, seed=0, space=space)
    b = tune_two_tower(data, base, n_trials=3, seed=0, space=space)
    assert [t[2] for t in a["trials"]] == [t[2] for t in b["trials"]]
    assert a["trials"][0][2] == {"tau": base.tau, "lr": base.lr, "max_epochs": 2}
    assert 0 < a["best_value"] <= 1 and a["best_value"] == max(v for _, v, _ in a["trials"])
    confirm = holdout(data, 0.1, seed=1)
    fold = holdout({"train": confirm[0], "train_docs": confirm[1]}, 0.1, seed=2)
    held_c, held_f = set(confirm[2]["query"]), set(fold[2]["query"])
    assert held_c and held_f and not held_c & held_f
    n_confirm = (
        1 if a["best_params"] == a["baseline_params"] else 2
    )  # the defaults and the winner, retrained on the confirmation split
    assert len(seen_queries) == 2 * (3 + n_confirm)
    for i, (queries, positives, corpus) in enumerate(seen_queries[: 3 + n_confirm]):
        # Confirmation queries never reach any training or the vocabulary's corpus; a fold's own
        # hold-out never reaches the trials that it scores.
        assert not held_c & (queries | positives | corpus)
        if i < 3:
            assert not held_f & (queries | positives | corpus)
    assert not set(kb["test"]["query"]) & seen_queries[0][0]
    assert a["confirmation"]["default"] > 0
    p = TwoTowerConfig(dim=8).params({**a, "adopted": True, "searched": ["tau", "lr", "max_epochs"]})
    assert (p.dim, p.tau, p.lr, p.max_epochs) == (
        8,
        a["best_params"]["tau"],
        a["best_params"]["lr"],
        a["best_params"]["max_epochs"],
    )


def test_als_tuning_keeps_the_defaults_when_a_planted_validation_winner_loses_on_confirmation():
    """The folds' score rewards the strongest regularisation (a degenerate, near-constant model);
    the confirmation split is scored honestly. The winner is not adopted and ALS trains with its
    config's values."""
    from assets.embeddings.als_assets import AlsConfig

    train, _ = _data()
    search, held, _ = confirmation_and_folds(train, SplitSpec("last_n", n=1), 2)
    honest = ndcg_score(10)

    def planted(model, fit, val):
        if len(fit) == len(search) and len(val) == len(held):
            return honest(model, fit, val)
        return float(model.params["reg"])

    res = tune_als(
        train,
        planted,
        n_trials=10,
        seed=0,
        space=SearchSpace(rank=(4, 32), iterations=(3, 8)),
        protocol=TuningProtocol(folds=2, patience=None),
    )
    assert res["best_params"]["reg"] > 0.5 and res["best_value"] == res["best_params"]["reg"]
    assert (
        res["confirmation"]["tuned"] < res["confirmation"]["default"]
    )  # the premise: it loses on confirmation
    assert res["adopted"] is False
    out = {**res, "searched": ["rank", "reg", "alpha", "iterations"]}
    assert AlsConfig().params(out) == AlsConfig(use_tuned=False).params(out)


def test_two_tower_tuning_chooses_the_start_when_offered_both(monkeypatch):
    """``TwoTowerSpace.init`` with both starts: the trials try each, the one validation prefers is
    adopted after confirmation, and with one start offered ``init`` is not searched at all."""
    import assets.embeddings.two_tower as tt
    from assets.ingest.kb import generate_kb
    from assets.tuning.protocol import in_space, searched_names
    from assets.tuning.search import TwoTowerSpace, tune_two_tower

    kb = generate_kb(n_docs=12, questions_per_doc=6)
    data = {"train": kb["train"], "train_docs": kb["docs"]}
    tried = []

    def fake_train(queries, positives, groups=None, params=None, corpus=None, validate=None):
        tried.append(params.init)  # a stand-in: the pretrained start validates better
        score = (0.9 if params.init == "pretrained" else 0.5) - 0.01 * params.max_epochs
        return type("M", (), {"history": {"best_val_mrr": score}})()

    monkeypatch.setattr(tt, "train_two_tower", fake_train)
    base = tt.TwoTowerParams(max_epochs=2, seed=0)
    both = TwoTowerSpace(max_epochs=(1, 3), init=("scratch", "pretrained"))
    assert searched_names(both) == ["tau", "lr", "max_epochs", "init"]
    assert in_space(base, both)["init"] == "scratch"
    res = tune_two_tower(data, base, n_trials=6, seed=0, space=both)
    assert {"scratch", "pretrained"} <= set(tried)
    assert res["best_params"]["init"] == "pretrained" and res["adopted"], res
    assert searched_names(TwoTowerSpace()) == ["tau", "lr", "max_epochs"]
    assert "init" not in in_space(base, TwoTowerSpace())
