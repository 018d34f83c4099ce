"""The interactions suite passes good data and names what is wrong with bad data."""

import numpy as np
import pandas as pd

from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from resources.validation import GreatExpectationsResource


def _good():
    df, _ = generate_interactions(SyntheticSpec(n_interactions=2000, seed=5))
    return ImplicitConversion().apply(df)


def test_good_interactions_pass():
    s = GreatExpectationsResource().validate(_good(), "interactions")
    assert s.success, s.message()
    assert s.evaluated >= 10 and s.n_rows > 1900


def test_bad_values_are_named_with_counts():
    df = _good()
    df.loc[:2, "rating"] = np.nan
    df.loc[3:4, "rating"] = -2.0
    df = ImplicitConversion().apply(df)
    df = pd.concat([df, df.iloc[[10]]], ignore_index=True)  # a duplicate event
    s = GreatExpectationsResource().validate(df, "interactions")
    assert not s.success
    msg = s.message()
    assert "expect_column_values_to_not_be_null(rating): 3 of" in msg
    assert "expect_column_values_to_be_between(rating): 2 of" in msg
    assert "expect_compound_columns_to_be_unique" in msg


def test_missing_column_is_named():
    df = _good().drop(columns=["confidence"])
    s = GreatExpectationsResource().validate(df, "interactions")
    assert not s.success
    assert "expect_column_to_exist(confidence)" in s.message()
