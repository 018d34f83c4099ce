"""Small random factor models for tests of the recommendation functions."""

import numpy as np

from assets.embeddings.factor_model import FactorModel


def random_factor_model(users, items, seed: int, dim: int = 4) -> FactorModel:
    """A :class:`FactorModel` over ``users`` and ``items`` with seeded normal factors, versioned
    ``str(seed)``."""
    rng = np.random.default_rng(seed)
    return FactorModel(
        np.asarray(users, np.int64),
        rng.normal(size=(len(users), dim)).astype(np.float32),
        np.asarray(items, np.int64),
        rng.normal(size=(len(items), dim)).astype(np.float32),
        {"model_version": str(seed)},
    )
