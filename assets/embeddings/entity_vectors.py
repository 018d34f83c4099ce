"""Entity text vectors: mean word vectors of the description + weighted one-hot structured fields.

Word vectors are trained with gensim on the descriptions by default, or loaded from a pretrained
word2vec-format file (e.g. the large public Chinese releases) given by path. A description with
no known word gets a zero text part (documented fallback), never a NaN vector.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from assets.embeddings.text import tokenize
from assets.embeddings.vectors import l2_normalize


@dataclass(frozen=True)
class EntityVectorParams:
    tokenizer: str = "jieba"
    dim: int = 64
    window: int = 5
    epochs: int = 30
    min_count: int = 1
    seed: int = 0
    pretrained_path: str = ""  # word2vec text/binary format; empty = train on the corpus
    text_weight: float = 1.0
    field_weights: dict = field(default_factory=lambda: {"location": 0.3, "type": 0.2, "tags": 0.3})


def word_vectors(token_lists: list[list[str]], p: EntityVectorParams):
    """gensim ``KeyedVectors``: trained on the corpus, or loaded from ``p.pretrained_path``."""
    from gensim.models import KeyedVectors, Word2Vec

    if p.pretrained_path:
        binary = p.pretrained_path.endswith(".bin")
        return KeyedVectors.load_word2vec_format(p.pretrained_path, binary=binary)
    sentences = [t for t in token_lists if t]
    if not sentences:
        raise ValueError("no tokens in any description: cannot train word vectors")
    return Word2Vec(sentences, vector_size=p.dim, window=p.window, min_count=p.min_count, sg=1, epochs=p.epochs,
                    workers=1, seed=p.seed).wv


def text_part(token_lists: list[list[str]], kv) -> tuple[np.ndarray, np.ndarray]:
    """Mean unit word vector per text and whether any token was known."""
    out = np.zeros((len(token_lists), kv.vector_size), np.float32)
    known = np.zeros(len(token_lists), bool)
    for i, toks in enumerate(token_lists):
        vs = [kv[t] for t in toks if t in kv.key_to_index]
        if vs:
            out[i] = np.mean(l2_normalize(np.stack(vs)), axis=0)
            known[i] = True
    return l2_normalize(out), known


def field_part(df: pd.DataFrame, weights: dict) -> tuple[np.ndarray, list[str]]:
    """One-hot (multi-hot for list fields) blocks, each scaled to unit norm times its weight."""
    blocks, names = [], []
    for col, w in weights.items():
        if w == 0 or col not in df.columns:
            continue
        vals = df[col].map(lambda v: list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v])
        cats = sorted({x for vs in vals for x in vs})
        idx = {c: j for j, c in enumerate(cats)}
        m = np.zeros((len(df), len(cats)), np.float32)
        for i, vs in enumerate(vals):
            for x in vs:
                m[i, idx[x]] = 1.0
        blocks.append(l2_normalize(m) * w)
        names += [f"{col}={c}" for c in cats]
    return (np.hstack(blocks) if blocks else np.zeros((len(df), 0), np.float32)), names


def entity_vectors(profiles: pd.DataFrame, p: EntityVectorParams = EntityVectorParams()) -> tuple[np.ndarray, dict]:
    """Unit vectors ``[text_weight · text | weighted fields]`` for every profile, plus stats."""
    if profiles.empty:
        raise ValueError("no entity profiles")
    toks = [tokenize(t, p.tokenizer) for t in profiles["description"].fillna("")]
    kv = word_vectors(toks, p)
    text, known = text_part(toks, kv)
    fields, names = field_part(profiles, p.field_weights)
    vec = l2_normalize(np.hstack([text * p.text_weight, fields]))
    return vec, {"vocab": len(kv.key_to_index), "no_known_word": int((~known).sum()), "field_columns": len(names),
                 "dim": int(vec.shape[1]), **{k: v for k, v in asdict(p).items() if k != "field_weights"},
                 "field_weights": p.field_weights}


def same_label_precision(vecs: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean share of each entity's k nearest neighbours (self excluded) with the same label."""
    s = vecs @ vecs.T
    np.fill_diagonal(s, -np.inf)
    top = np.argpartition(-s, k, axis=1)[:, :k]
    return float((labels[top] == labels[:, None]).mean())
