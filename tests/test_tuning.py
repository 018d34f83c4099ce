"""ALS tuning: seeded, budgeted, never looks at the test split, and finds better than bad defaults."""

import pandas as pd

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
