"""Online feature reads: an entity's latest window features (the APP layer) and, where the
real-time path writes, today's event counts (the DWD layer), by row key, at request time.

What an online model reads as Feast's ``get_online_features`` does: one multi-get per table for
the whole batch (one query on the embedded store, one Thrift call on HBase), never a scan, so the
cost grows with the batch, not with the table.
"""

from __future__ import annotations

from datetime import UTC, datetime

from assets.features.layers import DAY_MS
from resources.feature_store.base import FeatureStore, salted_rowkey

APP_TABLE, DWD_TABLE = "app_features", "dwd_events"


def _today_ms(now_ms: int | None) -> int:
    now = now_ms if now_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
    return now - now % DAY_MS


def online_features(
    store: FeatureStore, entity_ids: list[str], realtime: bool = True, now_ms: int | None = None
) -> list[dict]:
    """The latest window features of each entity, and today's event counts per feature and line.

    Parameters
    ----------
    store : FeatureStore
        The warehouse's store (the embedded SQLite, or HBase).
    entity_ids : list of str
        Entity ids as the warehouse keys them.
    realtime : bool
        Also count today's DWD cells (UTC day of ``now_ms``) per ``{feature}_{line}``.
    now_ms : int, optional
        The clock (epoch milliseconds; default now).

    Returns
    -------
    list of dict
        Per entity, in order: ``entity_id``, ``found`` (any APP cell), ``as_of`` (the day of the
        newest APP cell, ``None`` when not found), ``features`` (``name -> value``, empty when not
        found) and ``realtime`` (``{feature}_{line} -> count``, empty when nothing today).
    """
    today = _today_ms(now_ms)
    keys = {str(e): salted_rowkey(str(e)) for e in entity_ids}
    app = store.rows(APP_TABLE, list(keys.values()), columns=[b"a"])  # one multi-get per table
    dwd = store.rows(DWD_TABLE, list(keys.values()), columns=[b"d"], ts_min=today) if realtime else {}
    out = []
    for e in entity_ids:
        rk = keys[str(e)]
        cells = app.get(rk, {})
        feats = {c.split(b":", 1)[1].decode(): float(v) for c, (v, _) in cells.items()}
        newest = max((ts for _, ts in cells.values()), default=None)
        counts: dict[str, int] = {}
        for col in dwd.get(rk, {}):
            key = col.split(b":", 1)[1].decode().rsplit("_", 2)[0]  # {feature}_{line}_{stamp}_{value}
            counts[key] = counts.get(key, 0) + 1
        out.append(
            {
                "entity_id": str(e),
                "found": bool(feats),
                "as_of": datetime.fromtimestamp(newest / 1000, UTC).date().isoformat() if newest else None,
                "features": feats,
                "realtime": counts,
            }
        )
    return out
