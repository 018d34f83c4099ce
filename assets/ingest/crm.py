"""Synthetic CRM activity with planted signal, and the raw-event contract.

A fixed, seeded population of users, phones, sales staff and opportunities (each opportunity
links one or two users and their phones). Every user has a latent *engagement* and a preferred
business line; daily calls (from phones, value = seconds), logins, posts and clicks (from users)
are Poisson draws scaled by engagement. Owners (sales staff) change now and then, which feeds the
SCD2 owner history; a share of opportunities has no owner (the assignment's input).

Conversion is dated and stationary, so any calendar day looks alike: each opportunity renews
every ``cycle_days`` (at its own phase), and in each cycle it converts after a geometric number
of days whose daily hazard rises with its users' engagement (or not at all within the cycle).
The snapshot of a day says whether the current cycle has converted yet (``converted``) and when
(``converted_on``), so a label "converts in (D, D + horizon]" is known only from later snapshots.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

RAW_COLUMNS = ["event_id", "entity_type", "entity_id", "feature", "line", "event_ts", "value", "detail"]


@dataclass(frozen=True)
class CrmSpec:
    n_users: int = 2000
    n_opportunities: int = 1500
    n_staff: int = 40
    owner_change_rate: float = 0.01  # per opportunity per day
    seed: int = 11
    cycle_days: int = 60  # an opportunity renews (re-opens) this often
    max_daily_hazard: float = 0.06  # daily conversion hazard of the most engaged opportunity
    unassigned_share: float = 0.12  # opportunities with no owner


def population(spec: CrmSpec = CrmSpec()) -> dict[str, pd.DataFrame]:
    """Users (with latent engagement), phones and opportunities with links and labels."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n_users
    eng = rng.lognormal(-0.3, 0.9, n)
    line_pref = rng.random(n)  # share of activity on line 01
    users = pd.DataFrame(
        {
            "user_id": [f"u{i:06d}" for i in range(n)],
            "phone_id": [f"p{i:06d}" for i in range(n)],
            "engagement": eng,
            "line01_share": line_pref,
        }
    )
    m = spec.n_opportunities
    first = rng.integers(0, n, m)
    second = np.where(rng.random(m) < 0.3, rng.integers(0, n, m), -1)
    score = np.log(eng[first]) + np.where(second >= 0, 0.5 * np.log(eng[np.maximum(second, 0)]), 0.0)
    p = 1 / (1 + np.exp(-(1.6 * score - 0.4)))
    owner0 = np.array([f"s{k:03d}" for k in rng.integers(0, spec.n_staff, m)], dtype=object)
    # Drawn after every earlier stream, so the events and owners of a seed stay what they were.
    side = np.random.default_rng([spec.seed, 23])
    owner0[side.random(m) < spec.unassigned_share] = ""
    opps = pd.DataFrame(
        {
            "opp_id": [f"o{j:06d}" for j in range(m)],
            "user_ids": [[f"u{a:06d}"] + ([f"u{b:06d}"] if b >= 0 else []) for a, b in zip(first, second)],
            "hazard": spec.max_daily_hazard * p,
            "phase": side.integers(0, spec.cycle_days, m),
            "line": np.where(line_pref[first] >= 0.5, 0, 1),  # index into the layout's lines
            "owner0": owner0,
        }
    )
    opps["phone_ids"] = [[u.replace("u", "p", 1) for u in us] for us in opps["user_ids"]]
    return {"users": users, "opportunities": opps}


def conversion_days(
    opps: pd.DataFrame, day: date, spec: CrmSpec = CrmSpec()
) -> tuple[np.ndarray, np.ndarray]:
    """``(start, conversion)`` ordinals of each opportunity's cycle that contains ``day``.

    ``conversion`` is the day the cycle converts (``-1`` when it does not convert within the
    cycle), deterministic for ``(seed, cycle)`` whatever ``day`` asks.
    """
    L = spec.cycle_days
    t = day.toordinal() + opps["phase"].to_numpy()
    cycle = t // L
    start = cycle * L - opps["phase"].to_numpy()
    conv = np.full(len(opps), -1, dtype=np.int64)
    h = opps["hazard"].to_numpy()
    for c in np.unique(cycle):
        sel = cycle == c
        u = np.random.default_rng([spec.seed, 17, int(c)]).random(len(opps))[sel]
        wait = np.floor(np.log1p(-u) / np.log1p(-h[sel])).astype(np.int64)  # geometric, from 0
        conv[sel] = np.where(wait < L, start[sel] + wait, -1)
    return start, conv


def _day_seed(spec: CrmSpec, day: date, salt: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, day.toordinal(), salt])


def _pool(pop: dict, spec: CrmSpec, pool: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(entity ids, engagement, share of activity on the first line)`` of a simulator population.

    Users and phones share the users' latent engagement; staff draw theirs from a stream of their
    own, so adding a staff event leaves every other event of the day as it was.
    """
    u = pop["users"]
    if pool == "users":
        return u["user_id"].to_numpy(), u["engagement"].to_numpy(), u["line01_share"].to_numpy()
    if pool == "phones":
        return u["phone_id"].to_numpy(), u["engagement"].to_numpy(), u["line01_share"].to_numpy()
    rng = np.random.default_rng([spec.seed, 7])
    ids = np.array([f"s{k:03d}" for k in range(spec.n_staff)])
    return ids, rng.lognormal(0.0, 0.5, spec.n_staff), rng.random(spec.n_staff)


def _lines(rng: np.random.Generator, share: np.ndarray, lines: tuple[str, ...]) -> np.ndarray:
    """Each event's line: the first with probability ``share``, else one of the others uniformly.

    One uniform draw per event, as with two lines (the default), so a config with the same two
    lines draws the same events."""
    u = rng.random(len(share))
    if len(lines) == 1:
        return np.full(len(u), lines[0])
    # Past the first line's share, the rest of [0, 1) splits evenly among the other lines.
    rest = ((u - share) / np.maximum(1 - share, 1e-12) * (len(lines) - 1)).astype(np.int64)
    return np.asarray(lines)[np.where(u < share, 0, 1 + np.clip(rest, 0, len(lines) - 2))]


def _values(rng: np.random.Generator, value: dict, k: int) -> np.ndarray:
    kind = value["kind"]
    if kind == "exponential":
        return np.round(rng.exponential(value["mean"], k)) + value["offset"]
    if kind == "integers":
        return rng.integers(value["low"], value["high"], k)
    return np.full(k, float(value["value"]))


def daily_events(day: date, config, spec: CrmSpec = CrmSpec(), pop: dict | None = None) -> pd.DataFrame:
    """All raw events of one day, for every event type of the warehouse config.

    Parameters
    ----------
    day : date
    config : WarehouseConfig
        The lines, dimensions and event types to generate (``assets.features.warehouse_config``).
    spec : CrmSpec
        Population sizes and the seed.
    pop : dict, optional
        :func:`population`'s output (computed when not given).

    Returns
    -------
    DataFrame
        :data:`RAW_COLUMNS`, deterministic for ``(spec, day, config)``.
    """
    pop = pop or population(spec)
    pools = {d.name: d.pool for d in config.dimensions}
    rng = _day_seed(spec, day, 1)
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    frames = []
    for ev in config.events:
        ids, eng, share = _pool(pop, spec, pools[ev.dim])
        counts = rng.poisson(ev.rate * eng)
        idx = np.repeat(np.arange(len(ids)), counts)
        k = idx.size
        if k == 0:
            continue
        line = _lines(rng, share[idx], config.lines)
        secs = rng.integers(8 * 3600, 22 * 3600, k)
        value = _values(rng, ev.value, k)
        frames.append(
            pd.DataFrame(
                {
                    "entity_type": ev.dim,
                    "entity_id": ids[idx],
                    "feature": ev.name,
                    "line": line,
                    "event_ts": pd.Timestamp(base) + pd.to_timedelta(secs, unit="s"),
                    "value": value.astype(np.float64),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=RAW_COLUMNS)
    ev = (
        pd.concat(frames, ignore_index=True)
        .sort_values(["event_ts", "entity_id"], kind="stable")
        .reset_index(drop=True)
    )
    ev["event_ts"] = ev["event_ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ev.insert(0, "event_id", pd.Series(np.arange(len(ev))).map(f"{day:%Y%m%d}-{{:07d}}".format))
    ev["detail"] = json.dumps({"src": "synthetic"})
    return ev[RAW_COLUMNS]


def owner_snapshot(
    day: date, spec: CrmSpec = CrmSpec(), pop: dict | None = None, start: date = date(2026, 1, 1)
) -> pd.DataFrame:
    """Each opportunity's owner on ``day``: the initial owner, changed by dated reassignments."""
    pop = pop or population(spec)
    opps = pop["opportunities"]
    rng = np.random.default_rng([spec.seed, 99])
    horizon = max(0, (day - start).days) + 1
    # Reassignment days are drawn once for the whole history, so any day is reproducible alone.
    n_changes = rng.poisson(spec.owner_change_rate * 400, len(opps))
    owners = opps["owner0"].to_numpy().copy()
    for j in np.flatnonzero(n_changes):
        if not owners[j]:
            rng.integers(0, 400, n_changes[j]), rng.integers(0, spec.n_staff, n_changes[j])
            continue  # unassigned stays unassigned (the draws are kept: the others' stay put)
        days = np.sort(rng.integers(0, 400, n_changes[j]))
        new = rng.integers(0, spec.n_staff, n_changes[j])
        past = days < horizon
        if past.any():
            owners[j] = f"s{new[past][-1]:03d}"
    return pd.DataFrame({"opp_id": opps["opp_id"], "owner": owners})


def opportunities_on(
    day: date, spec: CrmSpec = CrmSpec(), lines: tuple[str, ...] = ("01", "02")
) -> pd.DataFrame:
    """``opp_id, user_ids, phone_ids, line, converted, converted_on, owner`` as of ``day``.

    ``converted`` is 1 when the current cycle converted on or before ``day`` (then
    ``converted_on`` is that day, ISO; otherwise empty); ``owner`` is empty when unassigned.
    """
    pop = population(spec)
    o = pop["opportunities"]
    _, conv = conversion_days(o, day, spec)
    done = (conv >= 0) & (conv <= day.toordinal())
    out = pd.DataFrame(
        {
            "opp_id": o["opp_id"],
            "user_ids": o["user_ids"],
            "phone_ids": o["phone_ids"],
            "line": np.asarray(lines)[np.minimum(o["line"].to_numpy(), len(lines) - 1)],
            "converted": done.astype(np.int64),
            "converted_on": [date.fromordinal(int(c)).isoformat() if d else "" for c, d in zip(conv, done)],
        }
    )
    return out.merge(owner_snapshot(day, spec, pop), on="opp_id")


def read_events_file(path: str) -> pd.DataFrame:
    """One day's raw events from CSV, Parquet or JSON lines (columns kept as given; CSV as text,
    so the row checks can name a non-numeric value). Unreadable files raise ``InputError``."""
    from assets.ingest.loaders import read_table

    return read_table(path)


def read_opportunities_file(path: str) -> pd.DataFrame:
    """Opportunities from a file; ``user_ids``/``phone_ids`` as lists (JSON lists or ``a|b`` text)."""
    from assets.ingest.loaders import floats, read_table, require_columns, text_lists

    df = read_table(path)
    require_columns(df, ["opp_id", "user_ids", "phone_ids", "converted", "owner"], path)
    df["user_ids"], df["phone_ids"] = text_lists(df["user_ids"]), text_lists(df["phone_ids"])
    df["converted"] = floats(df["converted"], "converted", path)
    return df
