"""The promotion steps: challenger against champion on the same held-out data, by each family's policy.

``promote_by_policy`` is the one step every family shares; each asset only says how to score a
registered version on its held-out data.
"""

import dagster as dg
import numpy as np
import pandas as pd

from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.two_tower import TwoTower
from assets.embeddings.vectors import table_to_vectors
from assets.evaluation._shared import promote_by_policy
from assets.evaluation.faq import retrieval_metrics, vector_rank
from assets.evaluation.offline import (
    SplitSpec,
    evaluate_als_vs_popularity,
    evaluate_models_same_users,
    split_interactions,
)
from recstack import names
from resources.mlflow_tracking import MlflowResource
from resources.retries import EXTERNAL_RETRY, transient_only
from resources.spark import SparkResource


@dg.asset(
    kinds={"mlflow"}, deps=[names.ALS_USER_VECTORS, names.ALS_ITEM_VECTORS], retry_policy=EXTERNAL_RETRY
)
@transient_only
def als_promotion(
    context: dg.AssetExecutionContext,
    interactions: pd.DataFrame,
    als_model: FactorModel,
    als_evaluation: dict,
    online_metrics: pd.DataFrame,
    spark: SparkResource,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """The ALS ``champion`` (refit with its registered parameters) scored on the split ``als_evaluation``
    scored the challenger on; ``champion`` moves only when ``mlflow/policies/recstack-als.yaml`` says so.
    (Runs after the vectors' blocking checks: a challenger whose suites failed never gets here.)"""
    k = als_evaluation["k"]

    def score_champion(version: str, params: dict) -> dict:
        train, test = split_interactions(interactions, SplitSpec(**als_evaluation["split"]))
        engine = params.get("engine", "spark")
        m = train_als(
            engine,
            train,
            AlsParams.from_dict(params),
            spark=spark.get_session() if engine == "spark" else None,
        )
        return evaluate_als_vs_popularity(train, test, m, k)["als"]

    return promote_by_policy(
        context,
        mlflow_tracking,
        names.ALS_MODEL,
        str(als_model.params["model_version"]),
        dict(als_evaluation["metrics"]["als"]),
        als_evaluation["metrics"]["popularity"],
        score_champion,
        online_metrics,
    )


@dg.asset(
    kinds={"mlflow"},
    deps=[names.ITEM2VEC_ITEM_VECTORS, names.ITEM2VEC_USER_VECTORS],
    retry_policy=EXTERNAL_RETRY,
)
@transient_only
def item2vec_promotion(
    context: dg.AssetExecutionContext,
    interactions: pd.DataFrame,
    item2vec_evaluation: dict,
    online_metrics: pd.DataFrame,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """The item2vec ``champion`` (refit with its registered parameters) scored with the same split, sessions
    and servable users ``item2vec_evaluation`` scored the challenger with; ``champion`` moves only when
    ``mlflow/policies/recstack-item2vec.yaml`` says so (popularity is the baseline)."""
    from assets.embeddings.item2vec import Item2VecParams, fit_item2vec, sessionize

    ev, k = item2vec_evaluation, item2vec_evaluation["k"]

    def score_champion(version: str, params: dict) -> dict:
        train, test = split_interactions(interactions, SplitSpec(**ev["split"]))
        champion = fit_item2vec(
            sessionize(train, ev["session_gap_seconds"]), train, Item2VecParams.from_dict(params)
        )
        # Same companion model as the challenger's evaluation, so both are scored on the same users.
        return evaluate_models_same_users(
            train, test, {"item2vec": champion, "als": train_als("implicit", train, AlsParams())}, k
        )["item2vec"]

    return promote_by_policy(
        context,
        mlflow_tracking,
        names.ITEM2VEC_MODEL,
        str(ev["model_version"]),
        dict(ev["metrics"]["item2vec"]),
        ev["metrics"]["popularity"],
        score_champion,
        online_metrics,
    )


@dg.asset(kinds={"mlflow"}, deps=[names.KB_DOC_VECTORS], retry_policy=EXTERNAL_RETRY)
@transient_only
def two_tower_promotion(
    context: dg.AssetExecutionContext,
    kb_documents: dict,
    two_tower_model: TwoTower,
    kb_search_evaluation: dict,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """The two-tower ``champion`` encodes the same documents and held-out queries the challenger was
    scored on; ``champion`` moves by ``mlflow/policies/recstack-two-tower.yaml`` (BM25 is the baseline)."""
    from assets.embeddings.text import document_vectors

    docs, test = pd.DataFrame(kb_documents["docs"]), pd.DataFrame(kb_documents["test"])

    def score_champion(version: str, params: dict) -> dict:
        model = mlflow_tracking.load_pyfunc(names.TWO_TOWER_MODEL, version)
        encode = lambda texts: np.asarray(model.predict(list(texts)), np.float32)  # noqa: E731
        ranked = vector_rank(
            document_vectors(encode, docs), encode(test["query"].tolist()), docs["doc_id"].to_numpy()
        )
        return retrieval_metrics(ranked, test["doc_id"].to_numpy())

    return promote_by_policy(
        context,
        mlflow_tracking,
        names.TWO_TOWER_MODEL,
        str(two_tower_model.history["model_version"]),
        kb_search_evaluation["two_tower"],
        kb_search_evaluation["bm25"],
        score_champion,
    )


@dg.asset(kinds={"mlflow"}, retry_policy=EXTERNAL_RETRY)
@transient_only
def entity_vectors_promotion(
    context: dg.AssetExecutionContext,
    entity_profiles: pd.DataFrame,
    entity_vectors,
    mlflow_tracking: MlflowResource,
) -> dg.Output[dict]:
    """Same-industry precision@10 of the challenger's vectors against the champion encoder's on the same
    profiles; the structured fields alone are the baseline (``mlflow/policies/recstack-entity-vectors.yaml``).
    Without an ``industry`` column there is nothing to decide on and the challenger stays."""
    from assets.embeddings.entity_vectors import EntityEncoder, EntityVectorParams, same_label_precision

    ids, vecs, md = table_to_vectors(entity_vectors)
    version = str(md.get("model_version", ""))
    if "industry" not in entity_profiles.columns:
        return dg.Output(
            {"model": names.ENTITY_MODEL, "promoted": False, "reason": "no labelled profiles to evaluate on"},
            metadata={"promoted": False, "reason": "no labelled profiles to evaluate on"},
        )
    profiles = entity_profiles.set_index("entity_id").loc[ids].reset_index()
    labels = profiles["industry"].to_numpy()
    metric = "same_industry_precision_at_10"
    fields = EntityEncoder.fit(profiles, EntityVectorParams(text_weight=0.0)).encode(profiles)[0]

    def score_champion(v: str, params: dict) -> dict:
        model = mlflow_tracking.load_pyfunc(names.ENTITY_MODEL, v)
        cols = [c for c in ("description", "location", "type", "tags") if c in profiles.columns]
        return {metric: same_label_precision(np.asarray(model.predict(profiles[cols]), np.float32), labels)}

    return promote_by_policy(
        context,
        mlflow_tracking,
        names.ENTITY_MODEL,
        version,
        {metric: same_label_precision(vecs, labels)},
        {metric: same_label_precision(fields, labels)},
        score_champion,
    )
