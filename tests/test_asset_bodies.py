"""Asset bodies called directly (``dg.build_asset_context``, resources on a temp dir), one stage
after another: no Dagster instance, no job run. The ingest and feature stages are called the
same way by ``test_bad_inputs.py``."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.embeddings.als_assets import AlsConfig, VectorsConfig, als_model, als_user_vectors
from assets.evaluation.recommendation_assets import EvaluationConfig, als_evaluation
from assets.indexes.index_assets import IndexConfig, faiss_index_als_items, faiss_index_als_users
from assets.ingest.ingest_assets import InteractionsConfig, interactions
from assets.ingest.loaders import ImplicitConversion
from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from assets.retrieval.retrieval_assets import LookalikeConfig, lookalike_audiences
from resources.faiss_resource import FaissResource
from resources.mlflow_tracking import MlflowResource
from resources.spark import SparkResource
from resources.storage import ParquetDataset
from resources.validation import GreatExpectationsResource

GX = GreatExpectationsResource()


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bodies")
    mlf = MlflowResource(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", artifact_root=str(tmp / "artifacts"))
    out = {}
    ev = list(
        interactions(dg.build_asset_context(), config=InteractionsConfig(n_interactions=4000, seed=3), gx=GX)
    )
    out["interactions"] = next(
        e.value for e in ev if isinstance(e, dg.Output) and e.output_name == "interactions"
    )
    res = als_model(
        dg.build_asset_context(),
        config=AlsConfig(engine="implicit", rank=8, iterations=4),
        als_tuning={},
        interactions=ParquetDataset.write(out["interactions"], tmp / "interactions.parquet"),
        spark=SparkResource(),
        mlflow_tracking=mlf,
    )
    out["als_model"], out["als_model_md"] = res.value, res.metadata
    out["mlflow"] = mlf
    return out


def _vectors_kw(m, stages) -> dict:
    from resources.monitoring import MonitoringResource

    return dict(
        config=VectorsConfig(),
        als_model=m,
        gx=GX,
        mlflow_tracking=stages["mlflow"],
        monitoring=MonitoringResource(),
    )


def test_ingest_body_yields_check_then_outputs(stages):
    df = stages["interactions"]
    assert len(df) > 3000 and df.dtypes["user_id"] == np.int64 and "confidence" in df


def test_embeddings_bodies_register_and_gate(stages):
    m, md = stages["als_model"], stages["als_model_md"]
    assert m.params["engine"] == "implicit" and m.params["model_version"] == "1"
    assert md["model_version"].value == "1" and "mlflow_run" in md
    assert stages["mlflow"].alias_version("recstack-als", "challenger") == "1"
    ev = list(als_user_vectors(dg.build_asset_context(), **_vectors_kw(m, stages)))
    check, drift, out = ev
    assert isinstance(check, dg.AssetCheckResult) and check.passed
    assert (
        drift.check_name == "als_user_vectors_drift" and drift.passed
    )  # the first version: nothing to compare
    assert out.value.num_rows == len(m.user_ids)


def test_index_and_retrieval_bodies(stages):
    m = stages["als_model"]
    from assets.embeddings.als_assets import als_item_vectors

    users = list(als_user_vectors(dg.build_asset_context(), **_vectors_kw(m, stages)))[-1].value
    items = list(als_item_vectors(dg.build_asset_context(), **_vectors_kw(m, stages)))[-1].value
    cfg, faiss_cfg = IndexConfig(recall_sample=200), FaissResource(use_gpu="never")
    ui = faiss_index_als_users(dg.build_asset_context(), config=cfg, vectors=users, faiss_cfg=faiss_cfg)
    ii = faiss_index_als_items(dg.build_asset_context(), config=cfg, vectors=items, faiss_cfg=faiss_cfg)
    assert ui.metadata["recall@10_vs_exact"].value == pytest.approx(1.0)  # exact index at this size
    user_ids = np.unique(stages["interactions"]["user_id"])
    aud = lookalike_audiences(
        dg.build_asset_context(),
        config=LookalikeConfig(audience_size=50),
        interactions=stages["interactions"],
        interaction_id_map=pd.DataFrame(
            {"column": "user_id", "original": [f"u-{u}" for u in user_ids], "id": user_ids}
        ),
        faiss_index_als_users=ui.value,
        faiss_index_als_items=ii.value,
    )
    df = aud.value
    assert set(df["strategy"]) == {"u2u", "i2u2u", "i2i2u"} and (df.groupby("strategy").size() <= 50).all()
    # Original ids beside the model's (every user mapped to a name here).
    assert len(df) > 0 and (df["user"] == "u-" + df["user_id"].astype(str)).all()


def test_evaluation_body_logs_into_the_model_run(stages):
    ev = list(
        als_evaluation(
            dg.build_asset_context(),
            config=EvaluationConfig(),
            interactions=stages["interactions"],
            als_model=stages["als_model"],
            spark=SparkResource(),
            mlflow_tracking=stages["mlflow"],
        )
    )
    check, out = ev
    assert isinstance(check, dg.AssetCheckResult)
    res = out.value["metrics"]
    assert set(res) == {"als", "popularity"} and res["als"]["n_eval_users"] > 0
    from mlflow import MlflowClient

    run = MlflowClient(stages["mlflow"].tracking_uri).get_run(stages["als_model"].params["mlflow_run_id"])
    assert "eval_als_ndcg@10".replace("@", "_at_") in run.data.metrics


def test_string_ids_round_trip_through_the_id_map(tmp_path):
    df, _ = generate_interactions(SyntheticSpec(n_interactions=500, seed=1))
    df = ImplicitConversion("binary").apply(df).assign(user_id=lambda d: "user-" + d["user_id"].astype(str))
    path = tmp_path / "events.csv"
    df[["user_id", "item_id", "ts", "rating"]].to_csv(path, index=False)
    ev = list(
        interactions(
            dg.build_asset_context(),
            config=InteractionsConfig(source="file", path=str(path), id_mapping="stable_hash"),
            gx=GX,
        )
    )
    out = {e.output_name: e.value for e in ev if isinstance(e, dg.Output)}
    idmap = out["interaction_id_map"].set_index("id")["original"]
    back = pd.Series(out["interactions"]["user_id"]).map(idmap)
    assert back.str.startswith("user-").all() and back.nunique() == df["user_id"].nunique()
