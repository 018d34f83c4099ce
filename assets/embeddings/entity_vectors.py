"""Entity text vectors: weighted mean word vectors of the description + weighted one-hot fields.

Word vectors are trained with gensim on the descriptions by default, or loaded from a pretrained
word2vec-format file (e.g. the large public Chinese releases) given by path. The description's
vector is the mean of its unit word vectors, weighted by ``weighting``:

- ``mean``: every word alike;
- ``idf``: ``log((1 + n) / (1 + df(w))) + 1`` over the fitted descriptions, so words every
  description shares (company, limited, 有限公司) count least;
- ``sif``: smooth inverse frequency ``a / (a + p(w))`` (Arora et al., 2017), then the fitted
  descriptions' first ``remove_components`` principal directions removed: the direction that common
  words and style share, not topic.

With ``lsa_dim`` > 0 the description's TF-IDF, projected onto its top ``lsa_dim`` singular
directions (:mod:`~assets.embeddings.lsa`), joins the vector as a lexical block weighted by
``lsa_weight``: names and rare terms that word vectors trained on a few thousand descriptions blur.

A description with no known word gets a zero text part (documented fallback), never a NaN vector.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from assets.embeddings.lsa import Lsa
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
        Weight of the description's part: its mean word vector, and the LSA block scaled by
        ``lsa_weight`` beside it (0: the structured fields alone).
    field_weights : dict
        Structured field -> weight of its one-hot block (location, type, tags).
    weighting : {"mean", "idf", "sif"}
        How the description's words are weighted (see the module docstring).
    sif_a : float
        SIF's smoothing ``a``.
    remove_components : int
        ``sif`` only: principal directions of the fitted descriptions' vectors removed.
    lsa_dim : int
        Dimensions of the TF-IDF LSA block (0: none).
    lsa_weight : float
        Weight of that block, beside ``text_weight``.
    text_encoder : str
        ``word2vec`` (word vectors as above), or a packaged sentence encoder whose vector replaces
        the word vectors' (``all-MiniLM-L6-v2``, :mod:`~assets.embeddings.pretrained_text`;
        English only: its vocabulary maps most Chinese characters to ``[UNK]``).
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
    # idf + a 128-d LSA block: chosen on BANKING77's training queries (benchmarks.entity_text)
    weighting: Literal["mean", "idf", "sif"] = "idf"
    sif_a: float = 1e-3
    remove_components: int = 1
    lsa_dim: int = 128
    lsa_weight: float = 0.65
    text_encoder: str = "word2vec"


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


def word_weights(token_lists: list[list[str]], words, p: EntityVectorParams) -> np.ndarray:
    """Each of ``words``' weight under ``p.weighting``, from its frequencies in ``token_lists``
    (the descriptions the encoder is fitted on; a word they lack counts as seen once)."""
    if p.weighting == "mean":
        return np.ones(len(words), np.float32)
    index = {w: i for i, w in enumerate(words)}
    if p.weighting == "idf":
        df = np.zeros(len(words))
        for toks in token_lists:
            for t in set(toks):
                if t in index:
                    df[index[t]] += 1
        return (np.log((1 + len(token_lists)) / (1 + df)) + 1).astype(np.float32)
    if p.weighting == "sif":
        tf = np.ones(len(words))
        for toks in token_lists:
            for t in toks:
                if t in index:
                    tf[index[t]] += 1
        return (p.sif_a / (p.sif_a + tf / tf.sum())).astype(np.float32)
    raise ValueError(f"unknown weighting {p.weighting!r} (mean, idf, sif)")


def text_part(
    token_lists: list[list[str]], kv, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean unit word vector per text and whether any token was known (``kv``: gensim
    ``KeyedVectors`` or anything with ``key_to_index``, ``vector_size`` and ``__getitem__``;
    ``weights``: per word of ``kv``, default all 1)."""
    out = np.zeros((len(token_lists), kv.vector_size), np.float32)
    known = np.zeros(len(token_lists), bool)
    for i, toks in enumerate(token_lists):
        at = [kv.key_to_index[t] for t in toks if t in kv.key_to_index]
        if at:
            vs = l2_normalize(np.stack([kv[t] for t in toks if t in kv.key_to_index]))
            w = np.ones(len(at), np.float32) if weights is None else weights[at]
            out[i] = (w[:, None] * vs).sum(0) / max(float(w.sum()), 1e-12)
            known[i] = True
    return out, known


def principal_components(x: np.ndarray, r: int) -> np.ndarray:
    """The first ``r`` right singular vectors of ``x`` ``(r, dim)`` (SIF's common directions)."""
    if r <= 0 or len(x) < 2:
        return np.zeros((0, x.shape[1]), np.float32)
    return np.linalg.svd(np.asarray(x, np.float64), full_matrices=False)[2][:r].astype(np.float32)


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
    """Word vectors as plain arrays (the part of ``KeyedVectors`` that encoding needs), with each
    word's weight and the directions removed from every text vector."""

    def __init__(self, words: np.ndarray, vectors: np.ndarray, weights=None, components=None):
        self.words, self.vectors = np.asarray(words, dtype=str), np.asarray(vectors, dtype=np.float32)
        self.key_to_index = {w: i for i, w in enumerate(self.words)}
        self.vector_size = self.vectors.shape[1]
        self.weights = np.ones(len(self.words), np.float32) if weights is None else np.asarray(weights)
        self.components = (
            np.zeros((0, self.vector_size), np.float32) if components is None else np.asarray(components)
        )

    def text_vectors(self, token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Unit text vectors (weighted mean, common directions removed) and which had a known word."""
        out, known = text_part(token_lists, self, self.weights)
        if len(self.components):
            out = out - (out @ self.components.T) @ self.components
        return l2_normalize(np.where(known[:, None], out, 0.0).astype(np.float32)), known

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.key_to_index[word]]


class EntityEncoder:
    """Profiles → unit vectors ``[text_weight · mean word vector | lsa_weight · LSA | weighted
    one-hot fields]``.

    Fitted once on the profiles (word vectors, the LSA projection and field categories), then
    encodes any profile, including new ones, the same way: this is what the registered pyfunc serves.
    """

    def __init__(
        self,
        params: EntityVectorParams,
        words: _Words,
        categories: dict[str, list[str]],
        lsa: Lsa | None = None,
        sentence=None,
    ):
        self.params, self.words, self.categories, self.lsa = params, words, categories, lsa
        self.sentence = sentence  # a packaged sentence encoder (TwoTower), or None: word vectors

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
        toks = [tokenize(t, p.tokenizer) for t in profiles["description"].fillna("")]
        if p.text_encoder != "word2vec":
            lsa = Lsa.fit(toks, p.lsa_dim, p.seed) if p.lsa_dim > 0 else None
            sentence = _sentence_encoder(p.text_encoder)
            empty = _Words(np.array([], dtype=str), np.zeros((0, sentence.dim), np.float32))
            return cls(p, empty, field_categories(profiles, p.field_weights), lsa, sentence)
        kv = word_vectors(toks, p)
        vocab = np.array(kv.index_to_key, dtype=str)
        words = _Words(vocab, kv.vectors, word_weights(toks, vocab, p))
        if p.weighting == "sif" and p.remove_components > 0:
            raw, known = text_part(toks, words, words.weights)
            words.components = principal_components(raw[known], p.remove_components)
        lsa = Lsa.fit(toks, p.lsa_dim, p.seed) if p.lsa_dim > 0 else None
        return cls(p, words, field_categories(profiles, p.field_weights), lsa)

    def encode(self, profiles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors for ``profiles`` (``description`` and the weighted fields) and whether
        each description had a known word."""
        descriptions = profiles["description"].fillna("").astype(str).tolist()
        toks = [tokenize(t, self.params.tokenizer) for t in descriptions]
        if self.sentence is not None:
            known = np.array([bool(t.strip()) for t in descriptions])
            text = np.where(known[:, None], self.sentence.encode(descriptions), 0.0).astype(np.float32)
        else:
            text, known = self.words.text_vectors(toks)
        fields, _ = field_part(profiles, self.params.field_weights, self.categories)
        blocks = [text * self.params.text_weight]
        if self.lsa is not None:
            blocks.append(self.lsa.transform(toks) * (self.params.lsa_weight * self.params.text_weight))
        return l2_normalize(np.hstack([*blocks, fields])), known

    @property
    def dim(self) -> int:
        lsa = self.lsa.dim if self.lsa is not None else 0
        return self.words.vector_size + lsa + sum(len(c) for c in self.categories.values())

    def save(self, path: str | Path) -> None:
        """``words.npz`` (no pickle), ``lsa.npz`` where there is one, and ``encoder.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        w = self.words
        np.savez(
            path / "words.npz", words=w.words, vectors=w.vectors, weights=w.weights, components=w.components
        )
        if self.lsa is not None:
            self.lsa.save(path / "lsa.npz")
        if self.sentence is not None:  # safetensors, JSON configuration, the tokenizer's files
            self.sentence.model.save(path / "sentence")
            self.sentence.vocab.save(path / "sentence")
        (path / "encoder.json").write_text(
            json.dumps({"params": asdict(self.params), "categories": self.categories}, ensure_ascii=False)
        )

    @classmethod
    def load(cls, path: str | Path) -> EntityEncoder:
        path = Path(path)
        meta = json.loads((path / "encoder.json").read_text())
        with np.load(path / "words.npz", allow_pickle=False) as z:
            extra = {k: z[k] for k in ("weights", "components") if k in z.files}  # older: unweighted
            words = _Words(z["words"], z["vectors"], **extra)
        lsa = Lsa.load(path / "lsa.npz") if (path / "lsa.npz").exists() else None
        p = EntityVectorParams(**meta["params"])
        sentence = (
            _sentence_encoder(p.text_encoder, path / "sentence") if (path / "sentence").exists() else None
        )
        return cls(p, words, meta["categories"], lsa, sentence)


def _sentence_encoder(name: str, folder: Path | None = None):
    """The packaged sentence encoder ``name`` (from its package, or a saved ``folder``), behind the
    two-tower's batched ``encode``."""
    from assets.embeddings.pretrained_text import PretrainedEncoder, PretrainedVocab, load_pretrained
    from assets.embeddings.two_tower import TwoTower, TwoTowerParams

    if folder is None:
        vocab, enc = load_pretrained(name)
    else:
        vocab, enc = PretrainedVocab.from_dir(folder, name), PretrainedEncoder.from_dir(folder)
    return TwoTower(vocab, enc, TwoTowerParams(init="pretrained", pretrained=name, max_len=128))


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
