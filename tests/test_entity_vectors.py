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


class _FakeWords:
    """Orthogonal word vectors: what a text's vector holds is exactly which words it has."""

    def __init__(self, words):
        self.index_to_key = list(words)
        self.key_to_index = {w: i for i, w in enumerate(words)}
        self.vectors = np.eye(len(words), dtype=np.float32)
        self.vector_size = len(words)

    def __getitem__(self, w):
        return self.vectors[self.key_to_index[w]]


def _boilerplate_profiles(n=300, seed=0):
    """Each description: its sector's word once, and 4 of 8 boilerplate words every sector uses."""
    rng = np.random.default_rng(seed)
    sector = rng.integers(0, 6, n)
    texts = [
        " ".join([f"sector{s}", *rng.choice([f"common{j}" for j in range(8)], 4, replace=False)])
        for s in sector
    ]
    return pd.DataFrame({"description": texts, "industry": sector})


@pytest.mark.parametrize("weighting", ["idf", "sif"])
def test_frequency_weighting_finds_the_sector_under_boilerplate(monkeypatch, tmp_path, weighting):
    import assets.embeddings.entity_vectors as ev

    df = _boilerplate_profiles()
    vocab = sorted({w for t in df["description"] for w in t.split()})
    monkeypatch.setattr(ev, "word_vectors", lambda toks, p: _FakeWords(vocab))

    def precision(**kw):
        p = ev.EntityVectorParams(tokenizer="char", field_weights={}, lsa_dim=0, **kw)
        enc = ev.EntityEncoder.fit(df, p)
        return enc, same_label_precision(enc.encode(df)[0], df["industry"].to_numpy())

    _, plain = precision(weighting="mean")
    enc, weighted = precision(weighting=weighting, remove_components=0)
    assert weighted > plain + 0.2, (plain, weighted)
    w = dict(zip(enc.words.words, enc.words.weights))
    assert min(w[f"sector{s}"] for s in range(6)) > max(w[f"common{j}"] for j in range(8))
    enc.save(tmp_path / weighting)
    back = ev.EntityEncoder.load(tmp_path / weighting)
    np.testing.assert_array_equal(back.encode(df)[0], enc.encode(df)[0])


def test_sif_removes_the_common_direction(monkeypatch):
    import assets.embeddings.entity_vectors as ev

    df = _boilerplate_profiles()
    vocab = sorted({w for t in df["description"] for w in t.split()})
    monkeypatch.setattr(ev, "word_vectors", lambda toks, p: _FakeWords(vocab))
    enc = ev.EntityEncoder.fit(
        df, ev.EntityVectorParams(tokenizer="char", field_weights={}, weighting="sif", lsa_dim=0)
    )
    u = enc.words.components
    assert u.shape == (1, len(vocab))
    vecs, known = enc.encode(df)
    assert known.all() and np.abs(vecs @ u.T).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    # without removal the text vectors do lie along it
    raw = ev.EntityEncoder.fit(
        df,
        ev.EntityVectorParams(
            tokenizer="char", field_weights={}, weighting="sif", remove_components=0, lsa_dim=0
        ),
    ).encode(df)[0]
    assert np.abs(raw @ u.T).mean() > 0.1


def test_lsa_block_recovers_sectors_that_word_vectors_miss(monkeypatch, tmp_path):
    """Word vectors that know nothing (random), descriptions whose words are their sector's: the
    TF-IDF LSA block alone carries the sector, and it round-trips as arrays."""
    import assets.embeddings.entity_vectors as ev

    rng = np.random.default_rng(0)
    sector = rng.integers(0, 5, 300)
    texts = [
        " ".join(
            [*rng.choice([f"s{s}w{j}" for j in range(6)], 3), *rng.choice([f"c{j}" for j in range(20)], 3)]
        )
        for s in sector
    ]
    df = pd.DataFrame({"description": texts})
    vocab = sorted({w for t in texts for w in t.split()})

    class _Random(_FakeWords):
        def __init__(self, words):
            super().__init__(words)
            self.vectors = np.random.default_rng(1).normal(size=(len(words), 16)).astype(np.float32)
            self.vector_size = 16

    monkeypatch.setattr(ev, "word_vectors", lambda toks, p: _Random(vocab))
    base = dict(tokenizer="char", field_weights={}, weighting="idf")
    plain = ev.EntityEncoder.fit(df, ev.EntityVectorParams(**base, lsa_dim=0))
    with_lsa = ev.EntityEncoder.fit(df, ev.EntityVectorParams(**base, lsa_dim=8, lsa_weight=1.0))
    p_plain = same_label_precision(plain.encode(df)[0], sector)
    p_lsa = same_label_precision(with_lsa.encode(df)[0], sector)
    assert p_lsa > p_plain + 0.2 and p_lsa > 0.8, (p_plain, p_lsa)
    assert with_lsa.dim == plain.dim + 8 == with_lsa.encode(df)[0].shape[1]
    with_lsa.save(tmp_path / "e")
    assert (tmp_path / "e" / "lsa.npz").exists()
    np.testing.assert_array_equal(ev.EntityEncoder.load(tmp_path / "e").encode(df)[0], with_lsa.encode(df)[0])
