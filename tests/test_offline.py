"""Held-out splits."""

import numpy as np
import pandas as pd
import pytest

from assets.evaluation.offline import SplitSpec, split_interactions


def frame():
    return pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3],
            "item_id": [10, 11, 12, 10, 13, 10],
            "ts": [1, 3, 2, 5, 4, 1],
            "confidence": 1.0,
        }
    )


def test_last_n_holds_out_latest_per_user():
    train, test = split_interactions(frame(), SplitSpec("last_n", n=1))
    assert sorted(zip(test.user_id, test.item_id)) == [(1, 11), (2, 10)]
    assert 3 in train.user_id.values and 3 not in test.user_id.values  # too few to hold out
    assert len(train) + len(test) == 6


def test_random_split_is_seeded_and_keeps_train_rows():
    df = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(50), 10),
            "item_id": np.tile(np.arange(10), 50),
            "ts": np.arange(500),
            "confidence": 1.0,
        }
    )
    a = split_interactions(df, SplitSpec("random", test_fraction=0.3, seed=1))
    b = split_interactions(df, SplitSpec("random", test_fraction=0.3, seed=1))
    pd.testing.assert_frame_equal(a[1], b[1])
    assert 0.2 < len(a[1]) / len(df) < 0.4
    assert a[0].groupby("user_id").size().min() >= 1
    with pytest.raises(ValueError):
        split_interactions(df, SplitSpec("by_moon"))
