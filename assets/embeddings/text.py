"""Tokenisation for Chinese and English text, and a vocabulary saved with the model.

``char`` mode splits CJK text into characters and Latin text into lower-cased words (robust, no
dictionary); ``jieba`` mode segments Chinese into words with jieba. Both keep digits as words.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np

PAD, UNK = "[PAD]", "[UNK]"
_TOKEN = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]+(?:'[a-z]+)?", re.IGNORECASE)
_CJK = re.compile(r"[\u4e00-\u9fff]")


Tokenizer = Literal["char", "jieba"]


def tokenize(text: str, mode: Tokenizer = "char") -> list[str]:
    """Tokens of ``text``: ``char`` (CJK characters + Latin words) or ``jieba`` (Chinese words)."""
    text = (text or "").lower()
    if mode == "char":
        return _TOKEN.findall(text)
    if mode == "jieba":
        import jieba

        jieba.setLogLevel(60)
        out = []
        for w in jieba.lcut(text):
            w = w.strip()
            if not w:
                continue
            if _CJK.search(w) or re.fullmatch(r"[a-z0-9]+", w):
                out.append(w)
            else:
                out.extend(_TOKEN.findall(w))
        return out
    raise ValueError(f"unknown tokenizer mode {mode!r} (char, jieba)")


class Vocab:
    """Token ↔ id; id 0 is padding, id 1 unknown."""

    def __init__(self, tokens: list[str], mode: str = "char"):
        self.itos = [PAD, UNK, *tokens]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.mode = mode

    @classmethod
    def build(cls, texts, mode: str = "char", min_freq: int = 1, max_size: int = 50_000) -> Vocab:
        c = Counter(t for s in texts for t in tokenize(s, mode))
        toks = [t for t, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq][:max_size]
        return cls(toks, mode)

    def encode(self, text: str, max_len: int = 48) -> list[int]:
        """Token ids (unknowns → 1); an empty or all-unknown text still yields one token, never zero."""
        ids = [self.stoi.get(t, 1) for t in tokenize(text, self.mode)][:max_len]
        return ids or [1]

    def __len__(self) -> int:
        return len(self.itos)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"mode": self.mode, "tokens": self.itos[2:]}, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        d = json.loads(Path(path).read_text())
        return cls(d["tokens"], d["mode"])


def document_vectors(encode, docs) -> np.ndarray:
    """A document's vector: the mean of its title's and all its similar questions' vectors,
    re-normalised (``encode``: texts → unit vectors; ``docs``: ``title``, ``questions``)."""
    from assets.embeddings.vectors import l2_normalize

    texts, owner = [], []
    for i, (t, qs) in enumerate(zip(docs["title"], docs["questions"])):
        texts += [t, *qs]
        owner += [i] * (1 + len(qs))
    v = encode(texts)
    sums = np.zeros((len(docs), v.shape[1]), np.float32)
    np.add.at(sums, np.asarray(owner), v)
    return l2_normalize(sums / np.bincount(owner, minlength=len(docs))[:, None])
