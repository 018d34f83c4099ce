"""Hybrid knowledge-base search: BM25 × PageRank, vector recall, and their fusion.

- Lexical: BM25 (``bm25s``) over each entry's title and similar questions, multiplied by a
  PageRank prior: ``score = bm25 * log(1 + 2 * PR)``, PR scaled so its mean is 1 (a missing PR is 1).
  The FAQ sets have no hyperlinks, so the link graph is a *similar-question graph*: each entry
  links to its ``m`` nearest entries by document vector, weighted by similarity; entries many
  others resemble rank higher.
- Vector: the two-tower encoder's query vector against each entry's vector (the mean of its
  title's and similar questions' vectors).
- Hybrid: the union of both candidate lists, ranked by the fusion
  :mod:`~assets.retrieval.kb_fusion` describes (chosen on validation by ``kb_search_fusion``;
  the default, vector alone, is the cosine rerank), then, where validation confirmed one, the
  fused top candidates rescored by the learned second stage of :mod:`~assets.retrieval.kb_rerank`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from assets.common.topk import topk
from assets.embeddings.text import document_vectors, tokenize
from assets.ingest.kb import doc_texts
from assets.retrieval.kb_fusion import KbFusionParams, candidate_mask, fuse_kb, score_candidates
from assets.retrieval.kb_rerank import KbReranker, candidate_features, first_stage

Mode = Literal["bm25", "bm25_pr", "vector", "hybrid"]
MODES: tuple[str, ...] = ("bm25", "bm25_pr", "vector", "hybrid")


def pagerank(
    weights: np.ndarray, damping: float = 0.85, iterations: int = 100, tol: float = 1e-10
) -> np.ndarray:
    """PageRank of a weighted adjacency matrix (row i links to the columns it weights), scaled to mean 1."""
    n = len(weights)
    w = np.asarray(weights, np.float64)
    out = w.sum(axis=1, keepdims=True)
    p = np.divide(w, out, out=np.zeros_like(w), where=out > 0)
    dangling = out[:, 0] == 0
    r = np.full(n, 1.0 / n)
    for _ in range(iterations):
        new = damping * (r @ p + r[dangling].sum() / n) + (1 - damping) / n
        if np.abs(new - r).sum() < tol:
            r = new
            break
        r = new
    return r * n


def similar_question_graph(doc_vecs: np.ndarray, m: int = 5) -> np.ndarray:
    """Each entry links to its ``m`` most similar other entries (positive cosine as the weight)."""
    s = doc_vecs @ doc_vecs.T
    np.fill_diagonal(s, -np.inf)
    nb, sc = topk(s, min(m, len(s) - 1))
    w = np.zeros_like(s, dtype=np.float64)
    rows = np.repeat(np.arange(len(s)), nb.shape[1])
    ok = nb.ravel() >= 0
    w[rows[ok], nb.ravel()[ok]] = np.maximum(sc.ravel()[ok], 0)
    return w


@dataclass
class HybridKbIndex:
    """Everything one KB search needs, built once from the documents and their vectors.

    The vector stages read ``doc_vecs`` in process, or, after :meth:`with_dense_store`, a
    :class:`~assets.indexes.neighbours.Neighbours` (the KB's Milvus alias) that holds them.
    """

    doc_ids: np.ndarray
    doc_vecs: np.ndarray | None
    pr: np.ndarray
    tokenizer: str
    _bm25: object
    dense: object = None
    fusion: KbFusionParams = KbFusionParams()
    titles: np.ndarray | None = None
    reranker: KbReranker | None = None

    def with_fusion(self, fusion: KbFusionParams) -> HybridKbIndex:
        """This index with ``hybrid`` fusing its stages by ``fusion``."""
        return replace(self, fusion=fusion)

    def with_reranker(self, reranker: KbReranker | None) -> HybridKbIndex:
        """This index with ``hybrid`` rescoring its fused top candidates by ``reranker`` (``None``:
        the fused ranking stands)."""
        return replace(self, reranker=reranker)

    def with_dense_store(self, dense) -> HybridKbIndex:
        """This index with its vector stages answered by ``dense`` and no vectors held here."""
        return replace(self, doc_vecs=None, dense=dense)

    @classmethod
    def build(
        cls,
        docs: pd.DataFrame,
        doc_vecs: np.ndarray,
        tokenizer: str = "char",
        graph_m: int = 5,
        pagerank_values: dict[int, float] | None = None,
    ) -> HybridKbIndex:
        """Index FAQ entries for the four search modes.

        Parameters
        ----------
        docs : DataFrame
            ``doc_id``, ``title``, ``questions`` (similar questions).
        doc_vecs : ndarray
            Each entry's vector, in the same order.
        tokenizer : {"char", "jieba", "word"}
            BM25's tokenisation.
        graph_m : int
            Neighbours per entry in the similar-question graph PageRank runs on.
        pagerank_values : dict, optional
            Doc id -> PR on the mean-1 scale, replacing the graph where a real link graph exists;
            missing ids get 1.

        Returns
        -------
        HybridKbIndex
        """
        import bm25s

        r = bm25s.BM25()
        r.index([tokenize(t, tokenizer) or ["[UNK]"] for t in doc_texts(docs)], show_progress=False)
        ids = docs["doc_id"].to_numpy(np.int64)
        if pagerank_values is not None:
            pr = np.array([pagerank_values.get(int(i), 1.0) for i in ids])
        else:
            pr = pagerank(similar_question_graph(doc_vecs, graph_m))
        titles = docs["title"].astype(str).to_numpy(object)
        return cls(ids, np.asarray(doc_vecs, np.float32), pr, tokenizer, r, titles=titles)

    def bm25_scores(self, queries: list[str]) -> np.ndarray:
        """BM25 score of every document for every query, ``(n_queries, n_docs)``."""
        toks = [tokenize(q, self.tokenizer) or ["[UNK]"] for q in queries]
        return (
            np.stack([self._bm25.get_scores(t) for t in toks]).astype(np.float32)
            if toks
            else np.zeros((0, len(self.doc_ids)))
        )

    def lexical_scores(self, queries: list[str], stage: str = "bm25_pr") -> np.ndarray:
        """The lexical stage's scores ``(n_queries, n_docs)``: BM25, or BM25 × the PageRank prior."""
        lex = self.bm25_scores(queries)
        return lex * self._prior()[None, :] if stage == "bm25_pr" else lex

    def lexical_stages(self, queries: list[str]) -> dict[str, np.ndarray]:
        """Both lexical stages' scores from one BM25 pass: ``{"bm25": ..., "bm25_pr": ...}``."""
        bm25 = self.bm25_scores(queries)
        return {"bm25": bm25, "bm25_pr": bm25 * self._prior()[None, :]}

    def candidates(
        self, queries: list[str], query_vecs: np.ndarray, fusion: KbFusionParams | None = None
    ) -> list[np.ndarray]:
        """The hybrid's candidate document ids per query: the union of the lexical stage's and the
        vector stage's top ``fusion.depth``."""
        f = fusion or self.fusion
        lex = self.lexical_scores(queries, f.lexical)
        cand = candidate_mask(lex, np.asarray(query_vecs, np.float32) @ self.doc_vecs.T, f.depth)
        return [self.doc_ids[np.flatnonzero(c)] for c in cand]

    def search(
        self,
        queries: list[str],
        query_vecs: np.ndarray | None = None,
        k: int = 10,
        mode: Mode = "hybrid",
        fusion: KbFusionParams | None = None,
        rerank: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k documents per query.

        Parameters
        ----------
        queries : list of str
            Query texts (the lexical stages).
        query_vecs : ndarray, optional
            Their encoder vectors (needed by ``vector`` and ``hybrid``).
        k : int
        mode : {"bm25", "bm25_pr", "vector", "hybrid"}
            BM25; BM25 × the PageRank prior; cosine to the entries' vectors; or both stages fused
            by ``fusion``.
        fusion : KbFusionParams, optional
            ``hybrid`` only: how the stages combine (default: the index's, which
            ``kb_search_fusion`` chose on validation).
        rerank : bool
            ``hybrid`` only: rescore the fused top candidates by the index's reranker, when it
            has one (``False``: the first stage alone).

        Returns
        -------
        ids : ndarray of int64, shape (len(queries), k)
            Document ids, ``-1`` padded.
        scores : ndarray of float32, shape (len(queries), k)
            ``-inf`` padded.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} ({', '.join(MODES)})")
        if mode != "bm25" and mode != "bm25_pr" and query_vecs is None:
            raise ValueError(f"mode {mode!r} needs query vectors")
        f = fusion or self.fusion
        reranker = self.reranker if rerank and mode == "hybrid" else None
        if self.doc_vecs is None and mode in ("vector", "hybrid"):
            return self._search_dense_store(queries, query_vecs, k, mode, f, reranker)
        if mode in ("bm25", "bm25_pr"):
            lex = self.lexical_scores(queries, mode)
            pos, sc = topk(lex, k, exclude=lex <= 0)
        else:
            cos = np.asarray(query_vecs, np.float32) @ self.doc_vecs.T
            if mode == "vector":
                pos, sc = topk(cos, k)
            elif reranker is not None:
                lexical = self.lexical_stages(queries)
                depth = max(k, reranker.params.depth)
                pos, feats = first_stage(lexical, cos, f, self.pr, queries, self.titles, depth)
                feats = reranker.features(feats, queries, self._ids(pos))
                pos, sc = (a[:, :k] for a in reranker.rerank(pos, feats))
            else:
                pos, sc = fuse_kb(self.lexical_scores(queries, f.lexical), cos, f, k)
        return self._ids(pos), sc

    def _ids(self, pos: np.ndarray) -> np.ndarray:
        """Document ids of column positions (``-1`` stays)."""
        return np.where(pos >= 0, self.doc_ids[np.clip(pos, 0, None)], -1)

    def _prior(self) -> np.ndarray:
        return np.log1p(2 * self.pr).astype(np.float32)

    def _search_dense_store(self, queries, query_vecs, k, mode, fusion: KbFusionParams, reranker=None):
        """``vector`` and ``hybrid`` over the dense store: its top lists, the lexical top lists,
        and the fusion (then the reranker) over the union with the candidates' vectors fetched by
        id (the same ranking as in process when the store searches exactly)."""
        qv = np.atleast_2d(np.asarray(query_vecs, np.float32))
        if mode == "vector" or (fusion.method == "vector" and reranker is None):
            return self.dense.search(qv, k)
        lex_all = self.lexical_stages(queries)
        lex = lex_all[fusion.lexical]
        depth = fusion.depth if fusion.method != "vector" else max(k, reranker.params.depth)
        lex_top = topk(lex, depth, exclude=lex <= 0)[0] if fusion.method != "vector" else None
        dense_top = self.dense.search(qv, depth)[0]
        pos_of = {int(d): i for i, d in enumerate(self.doc_ids)}
        ids = np.full((len(qv), k), -1, np.int64)
        scores = np.full((len(qv), k), -np.inf, np.float32)
        cands = []
        for r in range(len(qv)):
            cand = dense_top[r][dense_top[r] >= 0]
            if lex_top is not None:
                cand = np.union1d(self.doc_ids[lex_top[r][lex_top[r] >= 0]], cand)
            cands.append(cand)
        # Every query's candidates' vectors in one fetch (one round trip for a batch of queries).
        fetched = np.unique(np.concatenate(cands)) if cands else np.zeros(0, np.int64)
        vecs = self.dense.reconstruct(fetched) if fetched.size else None
        depth2 = max(k, reranker.params.depth) if reranker is not None else 0
        pos = np.full((len(qv), depth2), -1, np.int64)  # the reranker's candidates, doc columns
        base = None
        for r, cand in enumerate(cands):
            if not cand.size:
                continue
            cols = np.array([pos_of[int(c)] for c in cand])
            cos = (vecs[np.searchsorted(fetched, cand)] @ qv[r])[None, :]
            score = score_candidates(lex[r, cols][None, :], cos, np.ones_like(cos, bool), fusion)
            if reranker is None:
                best, sc = topk(score, k)
                ok = best[0] >= 0
                ids[r, : ok.sum()], scores[r, : ok.sum()] = cand[best[0][ok]], sc[0][ok]
                continue
            best, _ = topk(score, depth2)
            top = best[0][best[0] >= 0]
            feats = candidate_features(
                cos[:, top],
                lex_all["bm25"][r, cols[top]][None, :],
                lex_all["bm25_pr"][r, cols[top]][None, :],
                self.pr[cols[top]][None, :],
                [queries[r]],
                [list(self.titles[cols[top]])],
                score[:, top],
            )
            if base is None:
                base = np.zeros((len(qv), depth2, feats.shape[-1]), feats.dtype)
            base[r, : len(top)], pos[r, : len(top)] = feats[0], cols[top]
        if base is not None:  # the second stage once for every query (one second-encoder pass)
            feats = reranker.features(base, list(queries), self._ids(pos))
            order, sc = reranker.rerank(pos, feats)
            ids, scores = self._ids(order[:, :k]), sc[:, :k]
        return ids, scores


def kb_stage_scores(encode, docs: pd.DataFrame, queries: pd.DataFrame, tokenizer: str):
    """What a KB fusion is chosen from: the lexical stages' score matrices (``{"bm25",
    "bm25_pr"}``) and the cosine one of ``queries`` over ``docs``, each query's relevant column,
    and the :class:`HybridKbIndex` over ``docs``."""
    vecs = document_vectors(encode, docs)
    index = HybridKbIndex.build(docs, vecs, tokenizer)
    q = queries["query"].tolist()
    lexical = index.lexical_stages(q)
    column = {int(d): i for i, d in enumerate(index.doc_ids)}
    relevant = np.array([column[int(d)] for d in queries["doc_id"]], np.int64)
    return lexical, np.asarray(encode(q), np.float32) @ vecs.T, relevant, index


def rerank_in_milvus(
    client, collection: str, spec, query_vecs: np.ndarray, candidates: list[np.ndarray], k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """The hybrid's rerank done where the document vectors are served: a Milvus search per query
    restricted to its candidate ids (``id in [...]``), by cosine to each entry's vector."""
    from assets.indexes.milvus_index import search

    ids = np.full((len(query_vecs), k), -1, np.int64)
    scores = np.full((len(query_vecs), k), -np.inf, np.float32)
    for r, (q, cand) in enumerate(zip(query_vecs, candidates)):
        if len(cand):
            ids[r : r + 1], scores[r : r + 1] = search(
                client, collection, q[None, :], k, spec, filter=f"id in {[int(c) for c in cand]}"
            )
    return ids, scores
