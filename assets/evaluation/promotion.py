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

POLICY_DIR = Path(__file__).resolve().parents[2] / "mlflow" / "policies"


@dataclass(frozen=True)
class Policy:
    model: str
    metric: str
    min_relative_improvement: float
    evaluation_dataset: str
    baseline: str
    blocking_checks: tuple[str, ...]


def load_policy(model: str, folder: Path = POLICY_DIR) -> Policy:
    """The policy of ``model`` from ``<folder>/<model>.yaml`` (every field required)."""
    path = Path(folder) / f"{model}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no promotion policy for {model!r} at {path}")
    d = yaml.safe_load(path.read_text()) or {}
    missing = [f for f in Policy.__dataclass_fields__ if f not in d]
    if missing:
        raise ValueError(f"{path}: missing {missing}")
    if d["model"] != model:
        raise ValueError(f"{path}: names model {d['model']!r}, expected {model!r}")
    return Policy(
        model,
        str(d["metric"]),
        float(d["min_relative_improvement"]),
        str(d["evaluation_dataset"]),
        str(d["baseline"]),
        tuple(d["blocking_checks"] or ()),
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
) -> Decision:
    """Whether the challenger takes ``champion``.

    ``challenger``, ``champion`` and ``baseline`` map metric names to values on the same held-out
    data; ``champion`` is None when the model has none yet (then the challenger must beat the
    baseline). Any failed blocking check of the policy stops the promotion.
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
        return Decision(
            True,
            f"{m} {c:.4f} vs champion {ref:.4f} (+{gain:.1%} >= +{policy.min_relative_improvement:.1%})",
            c,
            ref,
        )
    return Decision(
        False,
        f"{m} {c:.4f} vs champion {ref:.4f} ({gain:+.1%}; needs > +{policy.min_relative_improvement:.1%})",
        c,
        ref,
    )
