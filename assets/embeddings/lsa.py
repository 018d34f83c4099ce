"""Latent semantic analysis: TF-IDF of tokenised texts projected onto its top singular directions.

The lexical half of the entity text vector: where word vectors trained on a few thousand short
descriptions blur names and rare terms together, the TF-IDF profile keeps them, and the projection
keeps its dimension small enough for a vector index (a raw TF-IDF vector is as wide as the
vocabulary). Saved as plain arrays (``.npz``, no pickle).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from assets.embeddings.vectors import l2_normalize


class Lsa:
    """``transform(token_lists) -> (n, dim)`` unit vectors; fitted by :meth:`fit`."""

    def __init__(self, vocab: np.ndarray, idf: np.ndarray, components: np.ndarray):
        self.vocab = np.asarray(vocab, dtype=str)
        self.idf = np.asarray(idf, np.float32)
        self.components = np.asarray(components, np.float32)
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def tfidf(self, token_lists: list[list[str]]) -> sp.csr_matrix:
        """Sublinear TF × IDF over the fitted vocabulary, rows unit length (unknown words dropped)."""
        rows, cols, vals = [], [], []
        for r, toks in enumerate(token_lists):
            counts: dict[int, int] = {}
            for t in toks:
                j = self.index.get(t)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            rows += [r] * len(counts)
            cols += list(counts)
            vals += [(1 + np.log(c)) * self.idf[j] for j, c in counts.items()]
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(token_lists), len(self.vocab)), dtype=np.float32)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel())
        return sp.diags(np.where(norms > 0, 1 / np.maximum(norms, 1e-12), 0.0)).astype(np.float32) @ m

    @classmethod
    def fit(cls, token_lists: list[list[str]], dim: int, seed: int = 0) -> Lsa:
        """IDF and the top ``dim`` right singular vectors of the texts' TF-IDF matrix (fewer when
        the vocabulary or the texts are fewer)."""
        from sklearn.utils.extmath import randomized_svd

        vocab = sorted({t for toks in token_lists for t in toks})
        if not vocab:
            raise ValueError("no tokens in any text: cannot fit LSA")
        index = {w: i for i, w in enumerate(vocab)}
        df = np.zeros(len(vocab))
        for toks in token_lists:
            for t in set(toks):
                df[index[t]] += 1
        idf = np.log((1 + len(token_lists)) / (1 + df)) + 1
        base = cls(np.array(vocab), idf, np.zeros((0, len(vocab))))
        m = base.tfidf(token_lists)
        k = max(1, min(dim, min(m.shape) - 1))
        _, _, vt = randomized_svd(m, k, random_state=seed)
        return cls(base.vocab, idf, vt)

    def transform(self, token_lists: list[list[str]]) -> np.ndarray:
        """Unit LSA vectors (zero for a text with no fitted word)."""
        return l2_normalize(np.asarray(self.tfidf(token_lists) @ self.components.T, np.float32))

    def save(self, path: str | Path) -> None:
        np.savez(path, vocab=self.vocab, idf=self.idf, components=self.components)

    @classmethod
    def load(cls, path: str | Path) -> Lsa:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["vocab"], z["idf"], z["components"])
