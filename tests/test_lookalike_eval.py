"""Campaign rules and the time-split lookalike backtest on planted communities."""

import numpy as np
import pytest

from assets.embeddings.als import AlsParams
from assets.evaluation.lookalike_assets import lookalike_backtest
from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from assets.retrieval.lookalike_eval import Campaign, audience_metrics, run_campaign, time_split_targets
from tests.test_lookalike import inter, item_index, user_index


def test_campaign_applies_exclusions_filters_and_size():
    c = Campaign(
        seed_user_ids=(1,), seed_item_ids=(100,), size=2, exclude_user_ids=(2,), allowed_users=(3, 4, 7, 8)
    )
    out = run_campaign(c, inter, user_index, item_index)
    assert set(out) == {"u2u", "i2u2u", "i2i2u"}
    for ids, _ in out.values():
        assert len(ids) <= 2 and not {1, 2} & set(ids.tolist()) and set(ids.tolist()) <= {3, 4, 7, 8}
    assert set(run_campaign(Campaign(seed_user_ids=(1,)), inter, user_index, item_index)) == {"u2u"}


def test_time_split_truth_is_only_new_users():
    df, _ = generate_interactions(SyntheticSpec(n_interactions=5000, seed=2))
    t, before, truth = time_split_targets(ImplicitConversion("binary").apply(df), 0.7, n_targets=5)
    assert (before["ts"] < t).all() and truth
    for item, users in truth.items():
        old = set(before.loc[before["item_id"] == item, "user_id"])
        assert users.size and not old & set(users.tolist())
    assert audience_metrics(np.array([1, 2, 3, 4]), np.array([2, 9])) == {"recall": 0.5, "precision": 0.25}


def test_backtest_strategies_beat_most_active_on_planted_communities():
    # A sparse population (10 interactions a user): who is *like* the audience matters more than who is
    # active.
    df, _ = generate_interactions(
        SyntheticSpec(n_interactions=30_000, n_users=3000, n_items=300, n_communities=8, seed=5)
    )
    res = lookalike_backtest(
        ImplicitConversion("binary").apply(df),
        AlsParams(rank=16, iterations=8),
        n_targets=10,
        audience_size=100,
    )
    m = res["metrics"]
    assert res["targets"] == 10 and res["winner"] in ("u2u", "i2u2u", "i2i2u")
    assert m[res["winner"]]["recall"] > 2 * m["most_active"]["recall"], m
    recalls = sorted((v["recall"] for s, v in m.items() if s != "most_active"), reverse=True)
    assert m[res["winner"]]["recall"] == recalls[0]
    assert res["margin_over_runner_up"] == pytest.approx(recalls[0] - recalls[1])
    with pytest.raises(ValueError, match="no target item"):
        lookalike_backtest(ImplicitConversion("binary").apply(df.head(50)), AlsParams(rank=4, iterations=2))
