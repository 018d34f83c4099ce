"""Champion/challenger promotion: a policy (a data file per model family) and the decision.

The decision is a pure function of the policy, the challenger's and champion's metrics on the
same held-out data, the baseline's, and the state of the blocking checks; it returns whether to
promote and a sentence saying why, which the promotion asset records as metadata and as MLflow
version tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from recstack import names

POLICY_DIR = Path(__file__).resolve().parents[2] / "mlflow" / "policies"


@dataclass(frozen=True)
class OnlineRule:
    """The optional ``online`` block of a policy: when the champion and the challenger have both
    served at least ``min_impressions`` on ``endpoint``, the challenger's ``metric`` (``ctr`` or
    ``conversion_rate``) must be at least the champion's times ``1 + min_lift``."""

    endpoint: str
    metric: str
    min_lift: float
    min_impressions: int


@dataclass(frozen=True)
class Policy:
    model: str
    metric: str
    min_relative_improvement: float
    evaluation_dataset: str
    baseline: str
    blocking_checks: tuple[str, ...]
    online: OnlineRule | None = None


def load_policy(model: str, folder: Path = POLICY_DIR) -> Policy:
    """The policy of ``model`` from ``<folder>/<model>.yaml`` (every field required)."""
    path = Path(folder) / f"{model}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no promotion policy for {model!r} at {path}")
    d = yaml.safe_load(path.read_text()) or {}
    missing = [f for f in Policy.__dataclass_fields__ if f not in d and f != "online"]
    if missing:
        raise ValueError(f"{path}: missing {missing}")
    if d["model"] != model:
        raise ValueError(f"{path}: names model {d['model']!r}, expected {model!r}")
    online = None
    if d.get("online"):
        o = d["online"]
        missing = [f for f in OnlineRule.__dataclass_fields__ if f not in o]
        if missing:
            raise ValueError(f"{path}: online is missing {missing}")
        if o["metric"] not in ("ctr", "conversion_rate"):
            raise ValueError(f"{path}: online.metric must be ctr or conversion_rate, not {o['metric']!r}")
        online = OnlineRule(
            str(o["endpoint"]), str(o["metric"]), float(o["min_lift"]), int(o["min_impressions"])
        )
    return Policy(
        model,
        str(d["metric"]),
        float(d["min_relative_improvement"]),
        str(d["evaluation_dataset"]),
        str(d["baseline"]),
        tuple(d["blocking_checks"] or ()),
        online,
    )


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger: float
    reference: float | None  # the champion's value, or the baseline's when there is no champion


def decide(
    policy: Policy,
    challenger: dict,
    champion: dict | None,
    baseline: dict | None,
    failed_checks: list[str] | None = None,
    online: dict | None = None,
) -> Decision:
    """Whether the challenger takes ``champion``.

    ``challenger``, ``champion`` and ``baseline`` map metric names to values on the same held-out
    data; ``champion`` is None when the model has none yet (then the challenger must beat the
    baseline). Any failed blocking check of the policy stops the promotion. ``online``
    (:func:`~assets.evaluation.online.versions_online`) holds both versions' served traffic; with
    an ``online`` rule in the policy and enough impressions on both, an offline win must also
    be an online one.
    """
    m = policy.metric
    if m not in challenger:
        raise KeyError(f"the challenger's metrics lack the policy's metric {m!r} (have {sorted(challenger)})")
    c = float(challenger[m])
    failed = [x for x in (failed_checks or []) if x in policy.blocking_checks]
    if failed:
        return Decision(False, f"blocking check(s) failed: {', '.join(failed)}", c, None)
    if champion is None:
        b = float((baseline or {}).get(m, float("-inf")))
        if c > b:
            return Decision(
                True, f"first version: {m} {c:.4f} beats the {policy.baseline} baseline's {b:.4f}", c, b
            )
        return Decision(
            False, f"first version: {m} {c:.4f} does not beat the {policy.baseline} baseline's {b:.4f}", c, b
        )
    ref = float(champion[m])
    need = ref * (1 + policy.min_relative_improvement)
    gain = (c / ref - 1) if ref else float("inf")
    if c > ref and c >= need:
        offline = f"{m} {c:.4f} vs champion {ref:.4f} (+{gain:.1%} >= +{policy.min_relative_improvement:.1%})"
        ok, why = _online_verdict(policy.online, online)
        return Decision(ok, offline + why, c, ref)
    return Decision(
        False,
        f"{m} {c:.4f} vs champion {ref:.4f} ({gain:+.1%}; needs > +{policy.min_relative_improvement:.1%})",
        c,
        ref,
    )


def _online_verdict(rule: OnlineRule | None, online: dict | None) -> tuple[bool, str]:
    """``(promote, reason suffix)`` of the policy's online rule over both versions' traffic."""
    if rule is None:
        return True, ""
    if online is None:
        return True, f"; online: the two versions have not both served on {rule.endpoint}"
    ch, cp = online[names.CHALLENGER], online[names.CHAMPION]
    few = min(int(ch["impressions"]), int(cp["impressions"]))
    if few < rule.min_impressions:
        return True, f"; online: {few} impressions < {rule.min_impressions}, offline decides"
    a, b = float(ch[rule.metric]), float(cp[rule.metric])
    lift = a / b - 1 if b else float("inf")
    text = f"online {rule.metric} {a:.4f} vs champion {b:.4f} ({lift:+.1%}; needs >= {rule.min_lift:+.1%})"
    if a >= b * (1 + rule.min_lift):
        return True, "; " + text
    return False, "; but " + text
