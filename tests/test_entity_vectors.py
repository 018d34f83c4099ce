"""Entity text vectors: tokenised descriptions + structured fields; never NaN; pretrained files load."""

import numpy as np
import pandas as pd
import pytest

from assets.embeddings.entity_vectors import (
    EntityVectorParams,
    entity_vectors,
    field_part,
    same_label_precision,
)
from assets.ingest.entities import generate_profiles


def test_text_beats_fields_and_vectors_are_unit():
    df = generate_profiles(400, seed=1)
    v, stats = entity_vectors(df, EntityVectorParams(epochs=60))  # a small corpus needs more epochs
    assert np.isfinite(v).all() and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    lab = df["industry"].to_numpy()
    both = same_label_precision(v, lab)
    fields, _ = entity_vectors(df, EntityVectorParams(text_weight=0.0))
    assert both > 0.8 and both > 2 * same_label_precision(fields, lab)


def test_unknown_or_empty_descriptions_fall_back_to_fields(tmp_path):
    df = pd.DataFrame(
        {
            "entity_id": [1, 2, 3],
            "description": ["银行 贷款", "", None],
            "location": ["北京", "上海", "北京"],
            "type": ["国企", "民营", "国企"],
            "tags": [["上市"], [], ["上市"]],
        }
    )
    kv = tmp_path / "w2v.txt"
    kv.write_text("2 3\n银行 1 0 0\n贷款 0 1 0\n")
    v, stats = entity_vectors(df, EntityVectorParams(pretrained_path=str(kv)))
    assert stats["vocab"] == 2 and stats["no_known_word"] == 2
    assert np.isfinite(v).all() and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[2] @ v[0] > v[1] @ v[0]  # same location, type and tag as entity 1
    with pytest.raises(ValueError, match="no entity profiles"):
        entity_vectors(df.iloc[:0])


def test_field_part_multi_hot():
    m, names = field_part(pd.DataFrame({"tags": [["a", "b"], ["b"]]}), {"tags": 1.0})
    assert names == ["tags=a", "tags=b"]
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), [1, 1])
