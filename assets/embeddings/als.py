"""Implicit ALS: parameters, id indexing and the engine dispatch, with one module per engine.

As ``implicit`` does (``als.py`` → ``cpu/als.py`` / ``gpu/als.py``), this module is what callers
import; the engines live beside it and import from here, never from each other:

- ``als_spark``: Spark MLlib (``local[*]`` here, any cluster in production);
- ``als_cpu``: the single-node engine on ``implicit``'s multithreaded kernels;
- ``als_gpu``: ``implicit``'s CUDA solver where a GPU build is installed.

Every engine returns the same :class:`~assets.embeddings.factor_model.FactorModel`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from assets.embeddings.factor_model import FactorModel

AlsEngine = Literal["spark", "implicit", "implicit-gpu"]
ENGINES: tuple[str, ...] = AlsEngine.__args__
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlsParams:
    """Hyper-parameters of implicit ALS (Hu, Koren & Volinsky 2008).

    Attributes
    ----------
    rank : int
        Factor dimension.
    reg : float
        L2 regularisation (scaled by each row's interaction count, as Spark does).
    alpha : float
        Confidence scale: an observed pair's loss weight is ``1 + alpha * confidence``.
    iterations : int
        Alternating sweeps (users, then items).
    seed : int
        Seed of the initial factors.
    """

    rank: int = 32
    reg: float = 0.05
    alpha: float = 10.0
    iterations: int = 12
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> AlsParams:
        """The parameters recorded in a model's ``params`` (extra keys ignored)."""
        return cls(**{k: type(getattr(cls(), k))(d[k]) for k in cls.__dataclass_fields__ if k in d})


def index_ids(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Map ``user_id``/``item_id`` onto dense ``u``/``i`` int32 indices (aggregating duplicates).

    Returns ``(triples[u, i, confidence], user_ids, item_ids)`` with both id arrays sorted.
    """
    g = df.groupby(["user_id", "item_id"], as_index=False)["confidence"].sum()
    user_ids = np.sort(g["user_id"].unique()).astype(np.int64)
    item_ids = np.sort(g["item_id"].unique()).astype(np.int64)
    g["u"] = np.searchsorted(user_ids, g["user_id"].to_numpy()).astype(np.int32)
    g["i"] = np.searchsorted(item_ids, g["item_id"].to_numpy()).astype(np.int32)
    return g[["u", "i", "confidence"]], user_ids, item_ids


def confidence_matrix(
    interactions: pd.DataFrame, alpha: float
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The user × item matrix of ``1 + alpha * confidence`` (what ``implicit`` takes) and both id arrays."""
    triples, user_ids, item_ids = index_ids(interactions)
    conf = 1.0 + alpha * triples["confidence"].to_numpy(np.float32)
    m = sp.csr_matrix(
        (conf, (triples["u"].to_numpy(), triples["i"].to_numpy())), shape=(len(user_ids), len(item_ids))
    )
    return m, user_ids, item_ids


def fit_implicit_library(m: sp.csr_matrix, params: AlsParams, use_gpu: bool) -> tuple[np.ndarray, np.ndarray]:
    """``implicit.als.AlternatingLeastSquares`` as the library is (constant ``reg``, small uniform
    start) on a :func:`confidence_matrix`; returns host ``(user_factors, item_factors)``."""
    from implicit.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=params.rank,
        regularization=params.reg,
        alpha=1.0,
        iterations=params.iterations,
        random_state=params.seed,
        use_gpu=use_gpu,
        calculate_training_loss=False,
    )
    model.fit(m, show_progress=False)
    model = model.to_cpu() if use_gpu else model
    return model.user_factors, model.item_factors


def pack_factor_model(
    engine: str,
    user_ids,
    user_factors,
    item_ids,
    item_factors,
    params: AlsParams,
    seconds: float,
    n_pairs: int,
    **extra,
) -> FactorModel:
    """An engine's factors as the one :class:`FactorModel` every engine returns (float32, params recorded)."""
    log.info(
        "%s ALS: %d users, %d items, rank %d in %.1fs",
        engine,
        len(user_ids),
        len(item_ids),
        params.rank,
        seconds,
    )
    return FactorModel(
        user_ids=user_ids,
        user_factors=np.asarray(user_factors, np.float32),
        item_ids=item_ids,
        item_factors=np.asarray(item_factors, np.float32),
        params={
            "engine": engine,
            **asdict(params),
            **extra,
            "train_seconds": round(seconds, 2),
            "n_pairs": int(n_pairs),
        },
    )


def train_als(
    engine: AlsEngine,
    interactions: pd.DataFrame | str,
    params: AlsParams = AlsParams(),
    spark=None,
    match_spark: bool = True,
    scratch_dir: str = "",
) -> FactorModel:
    """Train implicit ALS with ``engine``.

    Parameters
    ----------
    engine : {"spark", "implicit", "implicit-gpu"}
    interactions : DataFrame or str
        ``user_id``, ``item_id``, ``confidence``; for ``spark`` also the path of a Parquet dataset,
        which Spark reads without it passing through this process (the single-node engines read
        a path into memory).
    params : AlsParams
    spark : SparkSession, optional
        Needed by the ``spark`` engine.
    scratch_dir : str
        ``spark``: where executors write the factors
        (:func:`~assets.embeddings.als_spark.train_als_spark`).
    match_spark : bool
        For ``implicit``: minimise Spark's objective from Spark's start (default), or run the
        library as it is (see :func:`assets.embeddings.als_cpu.train_als_cpu`).
    """
    if engine == "spark":
        from assets.embeddings.als_spark import train_als_spark

        if spark is None:
            raise ValueError("the spark ALS engine needs a SparkSession")
        return train_als_spark(spark, interactions, params, scratch_dir)
    if isinstance(interactions, str):
        interactions = pd.read_parquet(interactions)
    if engine == "implicit":
        from assets.embeddings.als_cpu import train_als_cpu

        return train_als_cpu(interactions, params, match_spark=match_spark)
    if engine == "implicit-gpu":
        from assets.embeddings.als_gpu import train_als_gpu

        return train_als_gpu(interactions, params)
    raise ValueError(f"unknown ALS engine {engine!r} ({', '.join(ENGINES)})")
