"""A second encoder for the KB second stage, trained on hard negatives mined from the first stage.

The first-stage encoder learns from in-batch negatives: random entries, mostly easy. The entries
that actually beat a query's answer are the ones the first stage ranks just above it. This module
mines those for every training query (the fused first stage's top ``mine_depth`` entries other
than its own), then trains a copy of the first-stage encoder for a few more epochs with them as
extra negatives (:func:`~assets.embeddings.two_tower.train_two_tower`'s ``hard_negatives``): an
ANCE/DPR-style second encoder. Its cosine rescores the first stage's top candidates, alone or as
features of the LambdaRank reranker (:mod:`~assets.retrieval.kb_rerank`); validation decides.

Serving costs one more query encoding; the entries' second-stage vectors are computed once.
Saved as the encoder's own files (safetensors or tensors only) plus ``vectors.npz``: loading
unpickles nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from assets.retrieval.kb_fusion import KbFusionParams, fuse_kb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KbSecondEncoderParams:
    """How the second encoder is mined for and trained.

    Attributes
    ----------
    mine_depth : int
        First-stage candidates per training query that hard negatives come from.
    n_hard : int
        Hard negatives per query and training step.
    epochs : int
        Epochs from the first-stage encoder's weights (a fixed budget: the validation queries
        choose whether it is used, so they do not also stop its training).
    lr_scale : float
        The first stage's peak learning rate times this (it starts from trained weights).
    """

    mine_depth: int = 10
    n_hard: int = 2
    epochs: int = 2
    lr_scale: float = 0.5

    @classmethod
    def from_dict(cls, d: dict | None) -> KbSecondEncoderParams:
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})


def mine_hard_negatives(
    lexical: np.ndarray, cos: np.ndarray, relevant: np.ndarray, fusion: KbFusionParams, depth: int
) -> np.ndarray:
    """Each query's first-stage top ``depth`` columns other than its ``relevant`` one, best first
    (``-1`` padded): ``(n_queries, depth)``."""
    pos, _ = fuse_kb(lexical, cos, fusion, depth + 1)
    pos = np.where(pos == np.asarray(relevant)[:, None], -1, pos)
    # move the padding (the relevant column, where it was found) to the end, keeping the order
    order = np.argsort(pos < 0, axis=1, kind="stable")
    return np.take_along_axis(pos, order, 1)[:, :depth]


class SecondEncoder:
    """The second encoder and its vectors of the entries it rescores (by doc id)."""

    def __init__(self, encoder, doc_ids: np.ndarray, doc_vecs: np.ndarray, params: KbSecondEncoderParams):
        self.encoder, self.params = encoder, params
        self.doc_ids = np.asarray(doc_ids, np.int64)
        self.doc_vecs = np.asarray(doc_vecs, np.float32)
        self._row = {int(d): i for i, d in enumerate(self.doc_ids)}

    def cosines(self, queries: list[str], doc_ids: np.ndarray) -> np.ndarray:
        """Cosine of each query to each of its candidates ``doc_ids`` ``(n_queries, depth)``
        (``-1`` or an unknown id: 0)."""
        doc_ids = np.asarray(doc_ids)
        q = self.encoder.encode(list(queries))
        rows = np.array([[self._row.get(int(d), -1) for d in r] for r in doc_ids], np.int64).reshape(
            doc_ids.shape
        )
        vecs = self.doc_vecs[np.clip(rows, 0, None)]  # (n, depth, dim)
        return np.where(rows >= 0, np.einsum("nd,nkd->nk", q, vecs), 0.0).astype(np.float32)

    @classmethod
    def over(cls, encoder, docs: pd.DataFrame, params: KbSecondEncoderParams) -> SecondEncoder:
        """``encoder`` with its vectors of ``docs`` (the mean of each entry's texts' vectors)."""
        from assets.embeddings.text import document_vectors

        return cls(encoder, docs["doc_id"].to_numpy(), document_vectors(encoder.encode, docs), params)

    def with_docs(self, docs: pd.DataFrame) -> SecondEncoder:
        """The same encoder over another set of entries (e.g. the served ones)."""
        return SecondEncoder.over(self.encoder, docs, self.params)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.encoder.save(path / "encoder")
        np.savez(path / "vectors.npz", doc_ids=self.doc_ids, doc_vecs=self.doc_vecs)
        (path / "second_encoder.json").write_text(json.dumps(asdict(self.params)))

    @classmethod
    def load(cls, path: str | Path) -> SecondEncoder:
        from assets.embeddings.two_tower import TwoTower

        path = Path(path)
        with np.load(path / "vectors.npz", allow_pickle=False) as z:
            ids, vecs = z["doc_ids"], z["doc_vecs"]
        params = KbSecondEncoderParams.from_dict(json.loads((path / "second_encoder.json").read_text()))
        return cls(TwoTower.load(path / "encoder"), ids, vecs, params)


def train_second_encoder(
    first,
    pairs: pd.DataFrame,
    docs: pd.DataFrame,
    fusion: KbFusionParams,
    params: KbSecondEncoderParams = KbSecondEncoderParams(),
) -> SecondEncoder:
    """Mine each training query's hard negatives with the first stage (``first``'s cosine fused
    with BM25 by ``fusion`` over ``docs``), then train a copy of ``first`` on ``pairs`` with them.

    Parameters
    ----------
    first : TwoTower
        The first-stage encoder (never trained on the queries the result will be chosen on).
    pairs : DataFrame
        ``query``, ``positive``, ``doc_id``: the training pairs (``doc_id`` in ``docs``).
    docs : DataFrame
        The entries the pairs' ``doc_id`` refer to (``doc_id``, ``title``, ``questions``).
    fusion : KbFusionParams
        The first stage's fusion.
    params : KbSecondEncoderParams

    Returns
    -------
    SecondEncoder
        Over ``docs``; :meth:`SecondEncoder.with_docs` moves it to the served entries.
    """
    from assets.embeddings.two_tower import train_two_tower
    from assets.retrieval.kb_search import kb_stage_scores

    queries = pairs.drop_duplicates("query")[["query", "doc_id"]].reset_index(drop=True)
    lexical, cos, relevant, index = kb_stage_scores(first.encode, docs, queries, first.params.tokenizer)
    mined = mine_hard_negatives(lexical[fusion.lexical], cos, relevant, fusion, params.mine_depth)
    by_query = {q: [int(index.doc_ids[c]) for c in row if c >= 0] for q, row in zip(queries["query"], mined)}
    log.info(
        "second encoder: %d queries, hard negatives mined from the top %d", len(queries), params.mine_depth
    )
    model = train_two_tower(
        pairs["query"].tolist(),
        pairs["positive"].tolist(),
        pairs["doc_id"].tolist(),
        replace(
            first.params,
            max_epochs=params.epochs,
            val_fraction=0.0,
            warmup_fraction=0.0,
            lr=first.params.lr * params.lr_scale,
            finetune_lr=first.params.finetune_lr * params.lr_scale,
        ),
        start=first,
        hard_negatives=[by_query[q] for q in pairs["query"]],
        n_hard=params.n_hard,
    )
    return SecondEncoder.over(model, docs, params)
