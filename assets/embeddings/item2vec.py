"""item2vec: skip-gram word2vec over users' click sessions, plus user vectors and filtered recall.

Sequences are per user, time-ordered and cut into sessions wherever the gap between two events
exceeds ``gap_seconds``, so no "sentence" ever crosses from one user (or one visit) to another.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.common.topk import batched_topk, interaction_mask, take_ids
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.vectors import l2_normalize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionSpec:
    """How interactions are cut into click sessions.

    Attributes
    ----------
    gap_seconds : int
        A longer pause starts a new session. 3 days suits the synthetic default (about one event
        per user every 2 days); use ~1800 for real click streams (MovieTweetings did best at 3600).
    min_len : int
        Shorter sessions are dropped (a lone click teaches skip-gram nothing).
    """

    gap_seconds: int = 259_200
    min_len: int = 2


def sessionize(
    interactions: pd.DataFrame, gap_seconds: int = SessionSpec.gap_seconds, min_len: int = SessionSpec.min_len
) -> pd.DataFrame:
    """Per-user, time-ordered sessions.

    Parameters
    ----------
    interactions : DataFrame
        ``user_id``, ``item_id``, ``ts``.
    gap_seconds, min_len : int
        See :class:`SessionSpec`.

    Returns
    -------
    DataFrame
        ``user_id``, ``session``, ``items`` (list of item ids). A new session starts at a user's
        first event and after every gap longer than ``gap_seconds``.
    """
    if interactions.empty:
        return pd.DataFrame(columns=["user_id", "session", "items"])
    d = interactions.sort_values(["user_id", "ts"], kind="stable")
    u = d["user_id"].to_numpy()
    t = d["ts"].to_numpy()
    new = np.r_[True, (u[1:] != u[:-1]) | (np.diff(t) > gap_seconds)]
    sid = np.cumsum(new) - 1
    s = pd.DataFrame({"user_id": u, "session": sid, "item_id": d["item_id"].to_numpy()})
    g = s.groupby("session", sort=True).agg(user_id=("user_id", "first"), items=("item_id", list))
    g = g[g["items"].map(len) >= min_len].reset_index()
    return g[["user_id", "session", "items"]]


def random_walks(
    sessions: pd.Series, walks_per_item: int = 5, walk_length: int = 10, seed: int = 0
) -> list[list[int]]:
    """DeepWalk-style walks over the item co-occurrence graph (consecutive items in a session).

    Transition probabilities are proportional to co-occurrence counts; walks start from every
    item ``walks_per_item`` times. Used to augment sparse sessions.
    """
    rng = np.random.default_rng(seed)
    a, b = [], []
    for items in sessions:
        a.extend(items[:-1])
        b.extend(items[1:])
    if not a:
        return []
    ids, inv = np.unique(np.r_[a, b], return_inverse=True)
    src, dst = inv[: len(a)], inv[len(a) :]
    adj = sp.csr_matrix((np.ones(2 * len(a)), (np.r_[src, dst], np.r_[dst, src])), shape=(len(ids), len(ids)))
    adj.sum_duplicates()
    walks = []
    for start in np.repeat(np.arange(len(ids)), walks_per_item):
        w, cur = [start], start
        for _ in range(walk_length - 1):
            lo, hi = adj.indptr[cur], adj.indptr[cur + 1]
            if lo == hi:
                break
            p = adj.data[lo:hi]
            cur = adj.indices[lo + rng.choice(hi - lo, p=p / p.sum())]
            w.append(cur)
        if len(w) > 1:
            walks.append(ids[w].tolist())
    return walks


@dataclass(frozen=True)
class Item2VecParams:
    """Skip-gram (gensim Word2Vec) and user-vector parameters.

    Attributes
    ----------
    dim : int
        Vector dimension.
    window : int
        Skip-gram context window within a session.
    negative : int
        Negative samples per positive.
    min_count : int
        Items seen fewer times get no vector.
    epochs : int
        Passes over the sessions.
    workers : int
        Training threads; more than 1 is faster but not reproducible.
    seed : int
        Seed of the initial vectors and of the sampling.
    walks_per_item : int
        DeepWalk random walks per item added to the sessions (0: off; see docs for whether it helps).
    user_vector : {"mean", "sum"}
        How a user's items' vectors combine into the user's vector.
    recency_half_life_days : float
        Half-life of an item's weight in the user vector (0: every item weighs the same).
    """

    dim: int = 64
    window: int = 3
    negative: int = 10
    min_count: int = 3
    epochs: int = 20
    workers: int = 1
    seed: int = 0
    walks_per_item: int = 0
    user_vector: Literal["mean", "sum"] = "mean"
    recency_half_life_days: float = 1.0

    @classmethod
    def from_dict(cls, d: dict) -> Item2VecParams:
        """The parameters recorded in a model's ``params`` or MLflow run (strings; extra keys ignored)."""
        return cls(**{k: type(getattr(cls(), k))(d[k]) for k in cls.__dataclass_fields__ if k in d})


def train_item2vec(sessions: pd.DataFrame, params: Item2VecParams = Item2VecParams()):
    """Skip-gram Word2Vec over sessions (and optional random walks).

    Returns ``(item_ids int64, unit item vectors float32, seconds)``.
    """
    if sessions.empty:
        raise ValueError("no click sequences to train on (every session was shorter than min_len?)")
    from gensim.models import Word2Vec

    t0 = time.perf_counter()
    sentences = [[str(i) for i in s] for s in sessions["items"]]
    if params.walks_per_item:
        sentences += [
            [str(i) for i in w]
            for w in random_walks(sessions["items"], params.walks_per_item, seed=params.seed)
        ]
    m = Word2Vec(
        sentences,
        vector_size=params.dim,
        window=params.window,
        negative=params.negative,
        sg=1,
        min_count=params.min_count,
        epochs=params.epochs,
        workers=params.workers,
        seed=params.seed,
    )
    keys = np.array([int(k) for k in m.wv.index_to_key], dtype=np.int64)
    order = np.argsort(keys)
    vecs = l2_normalize(m.wv.vectors[order])
    return keys[order], vecs, time.perf_counter() - t0


def user_vectors(
    interactions: pd.DataFrame,
    item_ids: np.ndarray,
    item_vecs: np.ndarray,
    how: str = "mean",
    half_life_days: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A user's vector is the (optionally recency-weighted) sum or mean of their items' vectors.

    Items without a vector are skipped; users with none get no vector (never a NaN one).
    """
    if how not in ("mean", "sum"):
        raise ValueError(f"unknown user vector rule {how!r} (mean, sum)")
    pos = pd.Index(item_ids).get_indexer(interactions["item_id"])
    d = interactions.assign(_p=pos)[pos >= 0]
    if d.empty:
        return np.zeros(0, np.int64), np.zeros((0, item_vecs.shape[1]), np.float32)
    w = np.ones(len(d))
    if half_life_days > 0:
        age = (d.groupby("user_id")["ts"].transform("max") - d["ts"]).to_numpy() / 86_400
        w = 0.5 ** (age / half_life_days)
    users, uinv = np.unique(d["user_id"].to_numpy(), return_inverse=True)
    m = sp.csr_matrix((w, (uinv, d["_p"].to_numpy())), shape=(len(users), len(item_ids)))
    out = np.asarray(m @ item_vecs, dtype=np.float32)
    if how == "mean":
        out /= np.asarray(m.sum(axis=1), dtype=np.float32)
    return users.astype(np.int64), out


class ItemFilter(Protocol):
    """Business rule for recall: which items a user must not be shown (a boolean CSR mask)."""

    def mask(self, user_ids: np.ndarray, item_ids: np.ndarray) -> sp.csr_matrix: ...


class SeenItems:
    """Exclude what the user already interacted with."""

    def __init__(self, interactions: pd.DataFrame):
        self.inter = interactions

    def mask(self, user_ids, item_ids):
        return interaction_mask(self.inter, user_ids, item_ids)


class Blocklist:
    """Exclude a fixed set of items for everyone (out of stock, not allowed in a region, ...)."""

    def __init__(self, blocked: np.ndarray):
        self.blocked = np.asarray(blocked)

    def mask(self, user_ids, item_ids):
        cols = np.flatnonzero(np.isin(item_ids, self.blocked))
        rows = np.repeat(np.arange(len(user_ids)), len(cols))
        return sp.csr_matrix(
            (np.ones(len(rows)), (rows, np.tile(cols, len(user_ids)))), shape=(len(user_ids), len(item_ids))
        )


def recommend(
    user_ids, user_vecs, item_ids, item_vecs, k: int = 10, filters: list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest items to each user vector, after every filter: ``(item ids, scores)``, ``-1`` padded."""
    mask = None
    for f in filters or []:
        m = f.mask(user_ids, item_ids)
        mask = m if mask is None else mask + m
    pos, scores = batched_topk(l2_normalize(user_vecs), item_vecs, k, mask)
    return take_ids(item_ids, pos), scores


def fit_item2vec(sessions: pd.DataFrame, interactions: pd.DataFrame, params: Item2VecParams) -> FactorModel:
    """Train item2vec and pack it as the one factor-model type every family returns.

    Parameters
    ----------
    sessions : DataFrame
        :func:`sessionize`'s output (``user_id``, ``session``, ``items``): the skip-gram sentences.
    interactions : DataFrame
        ``user_id``, ``item_id``, ``ts``: each user's vector is the (recency-weighted) mean of the
        vectors of the items they interacted with.
    params : Item2VecParams

    Returns
    -------
    FactorModel
        Unit user and item vectors, ids sorted, ``params`` recording the parameters and timing.
    """
    item_ids, item_vecs, secs = train_item2vec(sessions, params)
    users, uvecs = user_vectors(
        interactions, item_ids, item_vecs, params.user_vector, params.recency_half_life_days
    )
    return FactorModel(
        users,
        l2_normalize(uvecs),
        item_ids,
        item_vecs,
        {"engine": "item2vec", **asdict(params), "train_seconds": round(secs, 2), "sessions": len(sessions)},
    )
