"""ALS tuning: seeded, budgeted, never looks at the test split, and finds better than bad defaults."""

import pandas as pd
import pytest

from assets.evaluation.offline import SplitSpec, split_interactions
from assets.evaluation.tuning import SearchSpace, ndcg_score, tune_als, validation_split
from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions


def _data():
    df, _ = generate_interactions(SyntheticSpec(n_interactions=15_000, n_communities=6, seed=3))
    return split_interactions(ImplicitConversion("binary").apply(df), SplitSpec("last_n", n=1))


def test_tuning_is_seeded_budgeted_and_blind_to_test():
    train, test = _data()
    seen = []

    def score(model, fit, val):
        seen.append((len(fit), len(val)))
        return ndcg_score(10)(model, fit, val)

    space = SearchSpace(rank=(4, 32), iterations=(3, 8))
    calls = []
    a = tune_als(train, score, n_trials=4, seed=1, space=space, on_trial=lambda *x: calls.append(x))
    b = tune_als(train, ndcg_score(10), n_trials=4, seed=1, space=space)
    assert [t[2] for t in a["trials"]] == [t[2] for t in b["trials"]]  # seeded: the same trials
    assert len(a["trials"]) == 4 and len(calls) == 4 and a["best_value"] == max(t[1] for t in a["trials"])
    fit, val = validation_split(train)
    assert all(f == len(fit) and v == len(val) for f, v in seen)  # scored on a split of train only
    assert len(fit) + len(val) <= len(train)
    keys = pd.MultiIndex.from_frame(test[["user_id", "item_id", "ts"]])
    assert not pd.MultiIndex.from_frame(fit[["user_id", "item_id", "ts"]]).isin(keys).any()
    assert not pd.MultiIndex.from_frame(val[["user_id", "item_id", "ts"]]).isin(keys).any()
    assert a["trials"][0][2] == {"rank": 32, "reg": 0.05, "alpha": 10.0, "iterations": 12}  # defaults tried first


def test_als_config_takes_the_tuned_parameters_unless_told_not_to():
    from assets.embeddings.assets import AlsConfig

    tuned = {"rank": 73, "reg": 0.03, "alpha": 1.1, "iterations": 17, "seed": 0}
    p = AlsConfig(seed=5).params(tuned)
    assert (p.rank, p.iterations, p.seed) == (73, 17, 5)
    assert AlsConfig(use_tuned=False, rank=9).params(tuned).rank == 9
    assert AlsConfig(rank=9).params(None).rank == 9  # no tuning output: the config's values


def test_ndcg_all_users_counts_users_without_a_vector_as_zero():
    from assets.embeddings.als import AlsParams, train_als
    from assets.embeddings.factor_model import FactorModel
    from assets.evaluation.assets import evaluate_als_vs_popularity
    from assets.evaluation.tuning import ndcg_all_users

    train, test = _data()
    m = train_als("implicit", train, AlsParams(rank=8, iterations=4))
    full = ndcg_all_users(m, train, test)
    # Serving every user, it is the ordinary metric.
    assert full == pytest.approx(evaluate_als_vs_popularity(train, test, m, 10)["als"]["ndcg@10"])
    half = len(m.user_ids) // 2
    part = FactorModel(m.user_ids[:half], m.user_factors[:half], m.item_ids, m.item_factors, {})
    p = ndcg_all_users(part, train, test)
    assert 0 < p < full  # the dropped users' hits are lost, not averaged away
    best_part = evaluate_als_vs_popularity(train, test[test["user_id"].isin(part.user_ids)], part, 10)["als"]["ndcg@10"]
    assert p < best_part  # the mean over served users alone would flatter it
    assert ndcg_all_users(FactorModel(m.user_ids[:0], m.user_factors[:0], m.item_ids, m.item_factors, {}), train, test) == 0.0


def test_item2vec_tuning_is_seeded_blind_to_test_and_beats_bad_defaults():
    from assets.embeddings.item2vec import Item2VecParams
    from assets.embeddings.item2vec_assets import Item2VecConfig
    from assets.evaluation.tuning import Item2VecSpace, tune_item2vec

    train, test = _data()
    # Poor but trainable defaults: a window of 1, 2 negatives and a recency half-life of 15 minutes.
    # Trial 0 trains and scores above 0, so "beats the defaults" compares against a real model.
    bad = Item2VecParams(dim=16, epochs=5, window=1, negative=2, min_count=8, recency_half_life_days=0.01, seed=0)
    space = Item2VecSpace(min_count=(1, 40))
    calls = []
    a = tune_item2vec(train, bad, gap_seconds=10**9, n_trials=6, seed=2, space=space, on_trial=lambda *x: calls.append(x))
    b = tune_item2vec(train, bad, gap_seconds=10**9, n_trials=6, seed=2, space=space)
    assert [t[2] for t in a["trials"]] == [t[2] for t in b["trials"]] and a["best_value"] == b["best_value"]
    assert a["trials"][0][2] == {"window": 1, "negative": 2, "min_count": 8, "recency_half_life_days": 0.01}
    assert a["default_value"] > 0 and a["trials"][0][1] == a["default_value"]
    assert len(calls) == 6 and a["best_value"] > a["default_value"]
    best = Item2VecParams(**a["best_params"])
    assert (best.dim, best.epochs) == (16, 5)  # not searched: kept from the base
    # The model config takes the searched fields only, unless told not to.
    tuned = {**a, "searched": ["window", "negative", "min_count", "recency_half_life_days"]}
    p = Item2VecConfig(dim=8).params(tuned)
    assert (p.dim, p.window, p.min_count) == (8, best.window, best.min_count)
    assert Item2VecConfig(use_tuned=False, window=7).params(tuned).window == 7
    assert Item2VecConfig(window=7).params({}).window == 7


def test_a_trial_that_fails_to_train_fails_the_search(monkeypatch):
    """Only "nothing to train" (min_count above every count) scores 0; a training error propagates."""
    import assets.embeddings.item2vec as i2v
    from assets.embeddings.item2vec import Item2VecParams
    from assets.evaluation.tuning import Item2VecSpace, tune_item2vec

    train, _ = _data()
    base = Item2VecParams(dim=8, epochs=1, min_count=1, seed=0)
    degenerate = tune_item2vec(train, Item2VecParams(dim=8, epochs=1, min_count=10_000, seed=0), gap_seconds=10**9,
                               n_trials=1, space=Item2VecSpace(min_count=(1, 10_000)))
    assert degenerate["default_value"] == 0.0

    def broken(*a, **k):
        raise RuntimeError("planted training bug")

    monkeypatch.setattr(i2v, "fit_item2vec", broken)
    with pytest.raises(RuntimeError, match="planted training bug"):
        tune_item2vec(train, base, gap_seconds=10**9, n_trials=2, space=Item2VecSpace())


def test_two_tower_tuning_holds_training_queries_out_and_is_seeded(monkeypatch):
    import assets.embeddings.two_tower as tt
    from assets.embeddings.kb_assets import TwoTowerConfig
    from assets.evaluation.faq import holdout
    from assets.evaluation.tuning import TwoTowerSpace, tune_two_tower
    from assets.ingest.kb import generate_kb

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
    _, _, val = holdout(data, 0.1, seed=1)
    assert len(val) and len(seen_queries) == 6
    for queries, positives, corpus in seen_queries:  # held-out queries never reach training or the vocabulary's corpus
        assert not set(val["query"]) & (queries | positives | corpus)
    assert not set(kb["test"]["query"]) & seen_queries[0][0]
    p = TwoTowerConfig(dim=8).params({**a, "searched": ["tau", "lr", "max_epochs"]})
    assert (p.dim, p.tau, p.lr, p.max_epochs) == (8, a["best_params"]["tau"], a["best_params"]["lr"], a["best_params"]["max_epochs"])
