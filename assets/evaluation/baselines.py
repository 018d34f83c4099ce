"""Reference recommenders scored beside ALS under the same protocol: SAR-style item similarity and BPR.

Both return top-k item *positions* per user (rows in ``user_index`` order, ``-1`` padded), as
:func:`~assets.evaluation.offline.recommend_from_factors` does, so
:func:`~assets.evaluation.offline.evaluate_recommendations` scores them exactly like ALS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.common.topk import batched_topk, interaction_mask, topk


def user_item_matrix(train: pd.DataFrame, user_index: pd.Index, item_index: pd.Index) -> sp.csr_matrix:
    """Binary ``(users, items)`` matrix of the pairs in ``train`` (duplicates counted once)."""
    return interaction_mask(train, user_index, item_index).astype(np.float32)


def recommend_item_similarity(
    train: pd.DataFrame, user_index: pd.Index, item_index: pd.Index, k: int, batch: int = 1024
) -> np.ndarray:
    """SAR-style recommendations (Microsoft Recommenders' SAR, Jaccard similarity, no time decay).

    Item-item co-occurrence ``C = AᵀA`` of the binary user-item matrix ``A`` is normalised into
    Jaccard ``c_ij / (c_ii + c_jj - c_ij)``; a user's scores are ``a_u · S``; seen items are
    excluded. ``S`` is dense (items², float32): a benchmark baseline for catalogues of thousands.
    """
    a = user_item_matrix(train, user_index, item_index)
    c = (a.T @ a).toarray()
    diag = np.diag(c).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.nan_to_num(c / (diag[:, None] + diag[None, :] - c), nan=0.0).astype(np.float32)
    out = np.full((a.shape[0], k), -1, dtype=np.int64)
    for r0 in range(0, a.shape[0], batch):
        block = a[r0 : r0 + batch]
        out[r0 : r0 + batch] = topk(np.asarray(block @ s), k, exclude=block)[0]
    return out


def recommend_bpr(
    train: pd.DataFrame,
    user_index: pd.Index,
    item_index: pd.Index,
    k: int,
    factors: int = 200,
    learning_rate: float = 0.01,
    regularization: float = 0.001,
    iterations: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Bayesian personalised ranking (Rendle et al. 2009) with ``implicit``'s CPU solver.

    The defaults are the settings of Microsoft Recommenders' MovieLens BPR benchmark (cornac: 200
    factors, lr 0.01, λ 0.001, 100 epochs). ``implicit`` appends a bias column to the factors.
    """
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    a = user_item_matrix(train, user_index, item_index)
    model = BayesianPersonalizedRanking(
        factors=factors,
        learning_rate=learning_rate,
        regularization=regularization,
        iterations=iterations,
        random_state=seed,
    )
    model.fit(a, show_progress=False)
    return batched_topk(np.asarray(model.user_factors), np.asarray(model.item_factors), k, exclude=a)[0]
