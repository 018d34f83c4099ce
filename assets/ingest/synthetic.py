"""Seeded synthetic interaction generator with planted structure.

The generator plants *communities*: each user belongs to one community and each community prefers
a subset of the catalogue. Item popularity follows a power law inside and outside the community.
Because the structure is known, evaluation on this data means something: a collaborative model
must recover the community affinities to beat a popularity baseline, and lookalike expansion
from seeds of one community should return users of the same community.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

INTERACTION_COLUMNS = ["user_id", "item_id", "ts", "rating"]


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and shape of a synthetic interaction set.

    Parameters
    ----------
    n_interactions : int
        Target number of interactions before de-duplication (the knob: 1k for tests, millions
        for benchmarks).
    n_users, n_items : int or None
        Population sizes; by default derived from ``n_interactions`` (about 50 interactions per
        user, 100 per item).
    n_communities : int
        Number of planted user communities.
    affinity : float
        Probability that an interaction is drawn from the user's community items rather than the
        whole catalogue.
    popularity_exponent : float
        Zipf exponent of item popularity (1.0 is a classic long tail).
    start_ts : int
        Unix time of the first interaction; events span ``days`` days.
    """

    n_interactions: int = 100_000
    n_users: int | None = None
    n_items: int | None = None
    n_communities: int = 10
    affinity: float = 0.8
    popularity_exponent: float = 1.0
    start_ts: int = 1_700_000_000
    days: int = 90
    seed: int = 42

    def resolved(self) -> tuple[int, int]:
        n_users = self.n_users or max(20, self.n_interactions // 50)
        n_items = self.n_items or max(20, self.n_interactions // 100)
        return n_users, n_items


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    # Random permutation so popularity rank is independent of id (ids carry no signal).
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return rng.permutation(w)


def _communities(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # The first draws of the seed's stream: item_communities re-derives them without the events.
    n_users, n_items = spec.resolved()
    k = max(1, min(spec.n_communities, n_items))
    return rng.integers(0, k, size=n_users), rng.integers(0, k, size=n_items)


def item_communities(spec: SyntheticSpec = SyntheticSpec()) -> np.ndarray:
    """Each item's planted community (the synthetic catalogue's ``category``), as
    :func:`generate_interactions` draws it for the same spec."""
    return _communities(spec, np.random.default_rng(spec.seed))[1]


def generate_interactions(spec: SyntheticSpec = SyntheticSpec()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate interactions and the planted ground truth.

    Returns
    -------
    interactions : DataFrame
        Columns ``user_id`` (int64), ``item_id`` (int64), ``ts`` (int64 unix seconds),
        ``rating`` (float64, 1..5 with community items rated higher). Unique per
        ``(user_id, item_id, ts)``.
    users : DataFrame
        ``user_id``, ``community``: the planted truth, for evaluating lookalike audiences.
    """
    rng = np.random.default_rng(spec.seed)
    n_users, n_items = spec.resolved()
    k = max(1, min(spec.n_communities, n_items))
    user_comm, item_comm = _communities(spec, rng)
    pop = _zipf_weights(n_items, spec.popularity_exponent, rng)

    # Users' activity is itself long-tailed (lognormal), so some users have few interactions.
    activity = rng.lognormal(mean=0.0, sigma=0.8, size=n_users)
    users = rng.choice(n_users, size=spec.n_interactions, p=activity / activity.sum())

    in_comm = rng.random(spec.n_interactions) < spec.affinity
    items = np.empty(spec.n_interactions, dtype=np.int64)

    # Global draws for the out-of-community share.
    n_global = int((~in_comm).sum())
    items[~in_comm] = rng.choice(n_items, size=n_global, p=pop / pop.sum())

    # Community draws: for each community, sample from its items by popularity.
    comm_of_event = user_comm[users]
    for c in range(k):
        mask = in_comm & (comm_of_event == c)
        m = int(mask.sum())
        if m == 0:
            continue
        cand = np.flatnonzero(item_comm == c)
        if cand.size == 0:
            cand = np.arange(n_items)
        w = pop[cand]
        items[mask] = cand[rng.choice(cand.size, size=m, p=w / w.sum())]

    ts = spec.start_ts + rng.integers(0, spec.days * 86_400, size=spec.n_interactions)
    # Community items are liked more: ratings carry signal for confidence weighting.
    match = item_comm[items] == comm_of_event
    base = np.where(match, 4.0, 2.5)
    rating = np.clip(np.round(base + rng.normal(0, 0.8, size=spec.n_interactions)), 1, 5)

    df = pd.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items.astype(np.int64),
            "ts": ts.astype(np.int64),
            "rating": rating.astype(np.float64),
        }
    )
    df = df.drop_duplicates(["user_id", "item_id", "ts"]).sort_values(["user_id", "ts"], kind="stable")
    truth = pd.DataFrame(
        {"user_id": np.arange(n_users, dtype=np.int64), "community": user_comm.astype(np.int64)}
    )
    return df.reset_index(drop=True), truth
