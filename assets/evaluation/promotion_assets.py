"""The promotion step: challenger against champion on the same held-out data, by the policy."""

import dagster as dg
import pandas as pd

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.evaluation.assets import evaluate_als_vs_popularity
from assets.evaluation.offline import SplitSpec, split_interactions
from assets.evaluation.promotion import decide, load_policy
from resources.mlflow_tracking import MlflowResource
from resources.retries import EXTERNAL_RETRY
from resources.spark import SparkResource


def champion_params(mlflow_tracking: MlflowResource, model_name: str) -> tuple[str, dict] | None:
    """``(version, run params)`` of the current champion, or None."""
    version = mlflow_tracking.alias_version(model_name, "champion")
    if version is None:
        return None
    _, client = mlflow_tracking._client()
    run = client.get_run(client.get_model_version(model_name, version).run_id)
    return version, dict(run.data.params)


@dg.asset(kinds={"mlflow"}, deps=["als_user_vectors", "als_item_vectors"], retry_policy=EXTERNAL_RETRY)
def als_promotion(context: dg.AssetExecutionContext, interactions: pd.DataFrame, als_model: FactorModel, als_evaluation: dict,
                  spark: SparkResource, mlflow_tracking: MlflowResource) -> dg.Output[dict]:
    """Score the ``champion`` (refit with its registered parameters) on the split ``als_evaluation``
    scored the challenger on; move ``champion`` only when ``mlflow/policies/recstack-als.yaml``
    says so. The decision and its reason become asset metadata and MLflow version tags. (Runs
    after the vectors' blocking checks: a challenger whose suites failed never gets here.)"""
    policy = load_policy("recstack-als")
    name, challenger_v = policy.model, str(als_model.params["model_version"])
    k = als_evaluation["k"]
    challenger = dict(als_evaluation["metrics"]["als"])
    baseline = als_evaluation["metrics"]["popularity"]
    champ = champion_params(mlflow_tracking, name)
    champion_metrics, champion_v = None, None
    if champ is not None and champ[0] != challenger_v:
        champion_v, p = champ
        train, test = split_interactions(interactions, SplitSpec(**als_evaluation["split"]))
        engine = p.get("engine", "spark")
        m = train_als(engine, train, AlsParams.from_dict(p), spark=spark.get_session() if engine == "spark" else None)
        champion_metrics = evaluate_als_vs_popularity(train, test, m, k)["als"]
    if champ is not None and champ[0] == challenger_v:
        d_promote, reason = False, f"version {challenger_v} is already the champion"
    else:
        d = decide(policy, challenger, champion_metrics, baseline)
        d_promote, reason = d.promote, d.reason
    if d_promote:
        previous = mlflow_tracking.move_champion(name, challenger_v, reason, by="policy")
        context.log.info("%s v%s is champion (was %s): %s", name, challenger_v, previous, reason)
    else:
        mlflow_tracking.version_tags(name, challenger_v, {"recstack.promotion": "not promoted", "recstack.promotion.reason": reason})
        context.log.info("%s v%s stays challenger: %s", name, challenger_v, reason)
    out = {"model": name, "challenger_version": challenger_v, "champion_version_before": champion_v, "promoted": d_promote,
           "reason": reason, "metric": policy.metric, "challenger": challenger.get(policy.metric),
           "champion": (champion_metrics or {}).get(policy.metric), "baseline": baseline.get(policy.metric)}
    return dg.Output(out, metadata={"promoted": d_promote, "reason": reason, "challenger_version": challenger_v,
                                    "champion_version": mlflow_tracking.alias_version(name, "champion") or "none",
                                    f"challenger_{policy.metric}": round(float(out["challenger"]), 5),
                                    **({f"champion_{policy.metric}": round(float(out["champion"]), 5)} if out["champion"] is not None else {})})
