"""What the evaluation and tuning asset modules share: the held-out split's config and the one
promotion step every family goes through."""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from assets.common._shared import params_config, params_of
from assets.evaluation.offline import SplitSpec
from assets.evaluation.online import versions_online
from assets.evaluation.promotion import decide, load_policy
from recstack import names
from resources.mlflow_tracking import MlflowResource


class _SplitMethods(dg.Config):
    def split_spec(self) -> SplitSpec:
        """The :class:`~assets.evaluation.offline.SplitSpec` these fields describe."""
        return params_of(self, SplitSpec)


SplitConfig = params_config(
    SplitSpec,
    "SplitConfig",
    "The held-out split of a family's evaluation "
    "(:class:`~assets.evaluation.offline.SplitSpec`); its tuning carves validation by the same rule.",
    base=_SplitMethods,
    rename={"method": "split", "n": "holdout_n", "seed": "split_seed"},
    exclude=("min_train",),
)


def champion_params(mlflow_tracking: MlflowResource, model_name: str) -> tuple[str, dict] | None:
    """``(version, run params)`` of the current champion, or None."""
    version = mlflow_tracking.alias_version(model_name, names.CHAMPION)
    if version is None:
        return None
    return version, mlflow_tracking.version_params(model_name, version)


def promote_by_policy(
    context,
    mlflow_tracking: MlflowResource,
    model_name: str,
    challenger_version: str,
    challenger: dict,
    baseline: dict,
    score_champion: Callable[[str, dict], dict],
    online_table: pd.DataFrame | None = None,
) -> dg.Output[dict]:
    """Score the champion (``score_champion(version, run_params)``) unless the challenger already is it,
    decide by the model's policy, move ``champion`` or tag why not; the decision is the output.
    ``online_table`` (``online_metrics``) lets a policy's online rule weigh both versions' traffic."""
    policy = load_policy(model_name)
    champ = champion_params(mlflow_tracking, model_name)
    champion_metrics, champion_v = None, None
    if champ is not None and champ[0] == challenger_version:
        promote, reason = False, f"version {challenger_version} is already the champion"
    else:
        if champ is not None:
            champion_v = champ[0]
            champion_metrics = score_champion(*champ)
        online = (
            versions_online(online_table, policy.online.endpoint, model_name, champion_v, challenger_version)
            if policy.online is not None
            else None
        )
        d = decide(policy, challenger, champion_metrics, baseline, online=online)
        promote, reason = d.promote, d.reason
    if promote:
        previous = mlflow_tracking.move_champion(model_name, challenger_version, reason, by="policy")
        context.log.info("%s v%s is champion (was %s): %s", model_name, challenger_version, previous, reason)
    else:
        mlflow_tracking.version_tags(
            model_name,
            challenger_version,
            {names.TAG_PROMOTION: "not promoted", names.TAG_PROMOTION_REASON: reason},
        )
        context.log.info("%s v%s stays challenger: %s", model_name, challenger_version, reason)
    m = policy.metric
    out = {
        "model": model_name,
        "challenger_version": challenger_version,
        "champion_version_before": champion_v,
        "promoted": promote,
        "reason": reason,
        "metric": m,
        names.CHALLENGER: challenger.get(m),
        names.CHAMPION: (champion_metrics or {}).get(m),
        "baseline": baseline.get(m),
    }
    return dg.Output(
        out,
        metadata={
            "promoted": promote,
            "reason": reason,
            "challenger_version": challenger_version,
            "champion_version": mlflow_tracking.alias_version(model_name, names.CHAMPION) or "none",
            f"challenger_{m}": round(float(out[names.CHALLENGER]), 5),
            **(
                {f"champion_{m}": round(float(out[names.CHAMPION]), 5)}
                if out[names.CHAMPION] is not None
                else {}
            ),
        },
    )
