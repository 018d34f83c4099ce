"""Entity text vectors: mean word vectors of the description + weighted one-hot structured fields.

Word vectors are trained with gensim on the descriptions by default, or loaded from a pretrained
word2vec-format file (e.g. the large public Chinese releases) given by path. A description with
no known word gets a zero text part (documented fallback), never a NaN vector.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assets.embeddings.text import Tokenizer, tokenize
from assets.embeddings.vectors import l2_normalize


@dataclass(frozen=True)
class EntityVectorParams:
    """Entity text vectors: description word vectors ⊕ weighted one-hot structured fields.

    Attributes
    ----------
    tokenizer : {"jieba", "char", "word"}
        How descriptions become words.
    dim : int
        Word-vector dimension (when trained on the corpus).
    window, epochs, min_count : int
        Word2Vec training on the descriptions.
    seed : int
        Word2Vec seed.
    pretrained_path : str
        A word2vec text or binary file to use instead of training (empty: train on the corpus).
    text_weight : float
        Weight of the description's mean word vector.
    field_weights : dict
        Structured field -> weight of its one-hot block (location, type, tags).
    """

    tokenizer: Tokenizer = "jieba"
    dim: int = 64
    window: int = 5
    epochs: int = 30
    min_count: int = 1
    seed: int = 0
    pretrained_path: str = ""
    text_weight: float = 1.0
    field_weights: dict[str, float] = field(
        default_factory=lambda: {"location": 0.3, "type": 0.2, "tags": 0.3}
    )


def word_vectors(token_lists: list[list[str]], p: EntityVectorParams):
    """gensim ``KeyedVectors``: trained on the corpus, or loaded from ``p.pretrained_path``."""
    from gensim.models import KeyedVectors, Word2Vec

    if p.pretrained_path:
        binary = p.pretrained_path.endswith(".bin")
        return KeyedVectors.load_word2vec_format(p.pretrained_path, binary=binary)
    sentences = [t for t in token_lists if t]
    if not sentences:
        raise ValueError("no tokens in any description: cannot train word vectors")
    return Word2Vec(
        sentences,
        vector_size=p.dim,
        window=p.window,
        min_count=p.min_count,
        sg=1,
        epochs=p.epochs,
        workers=1,
        seed=p.seed,
    ).wv


def text_part(token_lists: list[list[str]], kv) -> tuple[np.ndarray, np.ndarray]:
    """Mean unit word vector per text and whether any token was known (``kv``: gensim
    ``KeyedVectors`` or anything with ``key_to_index``, ``vector_size`` and ``__getitem__``)."""
    out = np.zeros((len(token_lists), kv.vector_size), np.float32)
    known = np.zeros(len(token_lists), bool)
    for i, toks in enumerate(token_lists):
        vs = [kv[t] for t in toks if t in kv.key_to_index]
        if vs:
            out[i] = np.mean(l2_normalize(np.stack(vs)), axis=0)
            known[i] = True
    return l2_normalize(out), known


def _values(v) -> list:
    return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]


def field_categories(df: pd.DataFrame, weights: dict) -> dict[str, list[str]]:
    """The categories of each weighted field seen in ``df`` (sorted; what the one-hot blocks span)."""
    return {
        col: sorted({str(x) for vs in df[col].map(_values) for x in vs})
        for col, w in weights.items()
        if w != 0 and col in df.columns
    }


def field_part(
    df: pd.DataFrame, weights: dict, categories: dict[str, list[str]] | None = None
) -> tuple[np.ndarray, list[str]]:
    """One-hot (multi-hot for list fields) blocks, each scaled to unit norm times its weight.

    ``categories`` fixes the columns (from training); values not among them are ignored.
    """
    categories = field_categories(df, weights) if categories is None else categories
    blocks, names = [], []
    for col, cats in categories.items():
        idx = {c: j for j, c in enumerate(cats)}
        m = np.zeros((len(df), len(cats)), np.float32)
        vals = df[col].map(_values) if col in df.columns else pd.Series([[]] * len(df))
        for i, vs in enumerate(vals):
            for x in vs:
                j = idx.get(str(x))
                if j is not None:
                    m[i, j] = 1.0
        blocks.append(l2_normalize(m) * weights[col])
        names += [f"{col}={c}" for c in cats]
    return (np.hstack(blocks) if blocks else np.zeros((len(df), 0), np.float32)), names


class _Words:
    """Word vectors as plain arrays (the part of ``KeyedVectors`` that encoding needs)."""

    def __init__(self, words: np.ndarray, vectors: np.ndarray):
        self.words, self.vectors = np.asarray(words, dtype=str), np.asarray(vectors, dtype=np.float32)
        self.key_to_index = {w: i for i, w in enumerate(self.words)}
        self.vector_size = self.vectors.shape[1]

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.key_to_index[word]]


class EntityEncoder:
    """Profiles → unit vectors ``[text_weight · mean word vector | weighted one-hot fields]``.

    Fitted once on the profiles (word vectors and field categories), then encodes any profile,
    including new ones, the same way: this is what the registered pyfunc serves.
    """

    def __init__(self, params: EntityVectorParams, words: _Words, categories: dict[str, list[str]]):
        self.params, self.words, self.categories = params, words, categories

    @classmethod
    def fit(cls, profiles: pd.DataFrame, p: EntityVectorParams = EntityVectorParams()) -> EntityEncoder:
        """Fit the encoder: word vectors on the descriptions (or loaded) and the fields' categories.

        Parameters
        ----------
        profiles : DataFrame
            ``description`` and the structured fields (``location``, ``type``, ``tags``).
        p : EntityVectorParams

        Returns
        -------
        EntityEncoder
            ``encode(profiles) -> (unit vectors, known)``; ``known`` is False where a description
            has no known word (its vector is then the fields' part alone).
        """
        if profiles.empty:
            raise ValueError("no entity profiles")
        kv = word_vectors([tokenize(t, p.tokenizer) for t in profiles["description"].fillna("")], p)
        words = _Words(np.array(kv.index_to_key, dtype=str), kv.vectors)
        return cls(p, words, field_categories(profiles, p.field_weights))

    def encode(self, profiles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors for ``profiles`` (``description`` and the weighted fields) and whether
        each description had a known word."""
        toks = [tokenize(str(t), self.params.tokenizer) for t in profiles["description"].fillna("")]
        text, known = text_part(toks, self.words)
        fields, _ = field_part(profiles, self.params.field_weights, self.categories)
        return l2_normalize(np.hstack([text * self.params.text_weight, fields])), known

    @property
    def dim(self) -> int:
        return self.words.vector_size + sum(len(c) for c in self.categories.values())

    def save(self, path: str | Path) -> None:
        """``words.npz`` (no pickle) + ``encoder.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / "words.npz", words=self.words.words, vectors=self.words.vectors)
        (path / "encoder.json").write_text(
            json.dumps({"params": asdict(self.params), "categories": self.categories}, ensure_ascii=False)
        )

    @classmethod
    def load(cls, path: str | Path) -> EntityEncoder:
        path = Path(path)
        meta = json.loads((path / "encoder.json").read_text())
        with np.load(path / "words.npz", allow_pickle=False) as z:
            words = _Words(z["words"], z["vectors"])
        return cls(EntityVectorParams(**meta["params"]), words, meta["categories"])


def entity_vectors(
    profiles: pd.DataFrame, p: EntityVectorParams = EntityVectorParams()
) -> tuple[np.ndarray, dict]:
    """Unit vectors for every profile (a fitted :class:`EntityEncoder`), plus stats."""
    enc = EntityEncoder.fit(profiles, p)
    vec, known = enc.encode(profiles)
    return vec, {
        "vocab": len(enc.words.words),
        "no_known_word": int((~known).sum()),
        "field_columns": enc.dim - enc.words.vector_size,
        "dim": int(vec.shape[1]),
        **{k: v for k, v in asdict(p).items() if k != "field_weights"},
        "field_weights": p.field_weights,
    }


def same_label_precision(vecs: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean share of each entity's k nearest neighbours (self excluded) with the same label."""
    s = vecs @ vecs.T
    np.fill_diagonal(s, -np.inf)
    top = np.argpartition(-s, k, axis=1)[:, :k]
    return float((labels[top] == labels[:, None]).mean())
