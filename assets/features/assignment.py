"""Matching scored opportunities to sales staff (商销匹配) under a daily capacity.

The rule: unassigned opportunities are taken best score first; each goes to the staff member
with capacity left whose past record on the opportunity's business line is best, measured as a
smoothed conversion rate ``(conversions + 1) / (opportunities + 2)`` of the opportunities they
own on that line; ties go to the one with fewer assignments today, then to the smaller id. An
opportunity left when every capacity is spent stays unassigned (and is counted).
"""

from __future__ import annotations

import heapq

import numpy as np
import pandas as pd

ASSIGNMENT_COLUMNS = ["opp_id", "line", "owner", "score", "rank", "affinity"]


def staff_affinity(snapshot: pd.DataFrame, converted_opps: set[str]) -> pd.DataFrame:
    """``owner, line, opportunities, conversions, affinity`` of every owner in ``snapshot``:
    the opportunities they own per line and how many of those ever converted."""
    owned = snapshot[snapshot["owner"].astype(str) != ""][["opp_id", "owner", "line"]].copy()
    owned["conv"] = owned["opp_id"].isin(converted_opps).astype(np.int64)
    g = owned.groupby(["owner", "line"]).agg(opportunities=("opp_id", "size"), conversions=("conv", "sum"))
    g = g.reset_index()
    g["affinity"] = (g["conversions"] + 1) / (g["opportunities"] + 2)
    return g


def assign(scores: pd.DataFrame, affinity: pd.DataFrame, capacity: int) -> tuple[pd.DataFrame, int]:
    """``(assignments, left unassigned)`` for the unassigned rows of ``scores``
    (``opp_id, line, owner, score``; owner empty when unassigned), by the module's rule.

    ``rank`` is the opportunity's rank by score within its line among those assigned."""
    todo = scores[scores["owner"].astype(str) == ""].sort_values(
        ["score", "opp_id"], ascending=[False, True], kind="stable"
    )
    staff = sorted(set(affinity["owner"]))
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, not {capacity}")
    aff = {(o, ln): a for o, ln, a in zip(affinity["owner"], affinity["line"], affinity["affinity"])}
    # Per line, a heap of (-affinity, assigned today, owner): the best available is on top.
    heaps: dict[str, list] = {}
    load = dict.fromkeys(staff, 0)
    rows, left = [], 0
    for opp, line, score in zip(todo["opp_id"], todo["line"].astype(str), todo["score"]):
        h = heaps.get(line)
        if h is None:
            h = heaps[line] = [(-aff.get((o, line), 0.5), 0, o) for o in staff]
            heapq.heapify(h)
        while h:
            neg_a, seen_load, owner = heapq.heappop(h)
            if load[owner] >= capacity:
                continue  # full: gone from every line's heap as it comes up
            if seen_load != load[owner]:  # stale entry: requeue with the current load
                heapq.heappush(h, (neg_a, load[owner], owner))
                continue
            load[owner] += 1
            rows.append((opp, line, owner, float(score), -neg_a))
            if load[owner] < capacity:
                heapq.heappush(h, (neg_a, load[owner], owner))
            break
        else:
            left += 1
    out = pd.DataFrame(rows, columns=["opp_id", "line", "owner", "score", "affinity"])
    out["rank"] = out.groupby("line")["score"].rank(ascending=False, method="first").astype(np.int64)
    return out[ASSIGNMENT_COLUMNS], left
