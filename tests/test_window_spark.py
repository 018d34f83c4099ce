"""The Spark path (mapInPandas over entity shards) equals the single-node kernel."""

import numpy as np
import pandas as pd
import pytest

from assets.features.dictionary import load_dictionary, parse_dictionary
from assets.features.layers import compute_window_table
from assets.features.spark_windows import window_table_spark
from assets.features.warehouse_config import load_warehouse_config

LAYOUT = load_warehouse_config()

pytestmark = pytest.mark.slow


def test_spark_equals_single_node(spark):
    rng = np.random.default_rng(4)
    es = parse_dictionary(load_dictionary(), LAYOUT)
    ents = pd.DataFrame(
        {
            "entity_id": [f"u{i}" for i in range(60)] + [f"p{i}" for i in range(60)],
            "dim": ["user"] * 60 + ["phone"] * 60,
        }
    )
    n = 4000
    long = pd.DataFrame(
        {
            "entity_id": rng.choice(ents["entity_id"][:110], n),
            "mid_feature": rng.choice(LAYOUT.mid_features, n),
            "line": rng.choice(["01", "02"], n),
            "offset": rng.integers(0, 200, n),
            "value": rng.integers(0, 9, n).astype(float),
        }
    )
    long = long.drop_duplicates(["entity_id", "mid_feature", "line", "offset"])
    single = (
        compute_window_table(long, ents, es, LAYOUT.lines).sort_values("entity_id").reset_index(drop=True)
    )
    dist = window_table_spark(spark, long, ents, es, LAYOUT.lines, shards=4)
    pd.testing.assert_frame_equal(single, dist, check_dtype=False)
