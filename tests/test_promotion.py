"""Champion/challenger: the policy decision, the promotion asset on a real MLflow store, manual moves and
rollback."""

import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.embeddings.als_assets import AlsConfig, als_model
from assets.evaluation.promotion import Policy, decide, load_policy
from assets.evaluation.promotion_assets import als_promotion
from assets.evaluation.recommendation_assets import EvaluationConfig, als_evaluation
from assets.ingest.ingest_assets import InteractionsConfig, interactions
from resources.mlflow_tracking import MlflowResource
from resources.spark import SparkResource
from resources.storage import ParquetDataset
from resources.validation import GreatExpectationsResource

P = Policy("m", "ndcg@10", 0.01, "held-out", "popularity", ("interactions_suite",))


def test_decision_rules():
    assert decide(P, {"ndcg@10": 0.2}, None, {"ndcg@10": 0.1}).promote  # first version beats the baseline
    d = decide(P, {"ndcg@10": 0.05}, None, {"ndcg@10": 0.1})
    assert not d.promote and "does not beat the popularity baseline" in d.reason
    assert decide(P, {"ndcg@10": 0.103}, {"ndcg@10": 0.1}, None).promote  # +3 % >= +1 %
    d = decide(P, {"ndcg@10": 0.1005}, {"ndcg@10": 0.1}, None)
    assert not d.promote and "+0.5%" in d.reason  # better, but not by the policy's margin
    d = decide(P, {"ndcg@10": 0.5}, {"ndcg@10": 0.1}, None, failed_checks=["interactions_suite"])
    assert not d.promote and "interactions_suite" in d.reason
    with pytest.raises(KeyError, match="ndcg@10"):
        decide(P, {"recall@10": 0.5}, None, None)


def test_every_family_has_a_policy():
    for m in ("recstack-als", "recstack-item2vec", "recstack-two-tower", "recstack-entity-vectors"):
        p = load_policy(m)
        assert p.model == m and p.metric and p.blocking_checks
    with pytest.raises(FileNotFoundError):
        load_policy("nope")


def _train(mlf, gx, inter, **als):
    m = als_model(
        dg.build_asset_context(),
        config=AlsConfig(engine="implicit", use_tuned=False, **als),
        als_tuning={},
        interactions=ParquetDataset.write(inter, Path(tempfile.mkdtemp()) / "interactions.parquet"),
        spark=SparkResource(),
        mlflow_tracking=mlf,
    ).value
    ev = list(
        als_evaluation(
            dg.build_asset_context(),
            config=EvaluationConfig(),
            interactions=inter,
            als_model=m,
            spark=SparkResource(),
            mlflow_tracking=mlf,
        )
    )[-1].value
    out = als_promotion(
        dg.build_asset_context(),
        interactions=inter,
        als_model=m,
        als_evaluation=ev,
        online_metrics=pd.DataFrame(),  # no traffic yet
        spark=SparkResource(),
        mlflow_tracking=mlf,
    )
    return m, out.value


@pytest.fixture(params=["sqlite", "server"])
def tracking(request, tmp_path):
    """A SQLite tracking store, or a real `mlflow server` process on loopback over one."""
    if request.param == "sqlite":
        yield MlflowResource(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art")
        )
        return
    from tests.support import servers

    try:
        with servers.mlflow_server(tmp_path / "server") as url:
            yield MlflowResource(tracking_uri=url)
    except servers.NotInstalled as e:
        servers.skip_not_installed(e)


def test_promotion_asset_promotes_better_keeps_worse_and_rollback(tracking, monkeypatch):
    mlf = tracking
    gx = GreatExpectationsResource()
    ev = list(
        interactions(
            dg.build_asset_context(),
            config=InteractionsConfig(n_interactions=20_000, n_communities=8, seed=7),
            gx=gx,
        )
    )
    inter = next(e.value for e in ev if isinstance(e, dg.Output) and e.output_name == "interactions")
    _, first = _train(mlf, gx, inter, rank=16, iterations=8)
    assert first["promoted"], first
    assert "first version" in first["reason"] and mlf.alias_version("recstack-als", "champion") == "1"
    _, worse = _train(mlf, gx, inter, rank=1, iterations=1)
    assert (
        not worse["promoted"]
        and "vs champion" in worse["reason"]
        and mlf.alias_version("recstack-als", "champion") == "1"
    )
    tags = lambda v: {r["version"]: r["tags"] for r in mlf.versions("recstack-als")}[v]  # noqa: E731
    assert tags("2")["recstack.promotion"] == "not promoted"
    _, better = _train(mlf, gx, inter, rank=32, iterations=12, reg=0.02)
    champ = mlf.alias_version("recstack-als", "champion")
    assert better["champion"] is not None  # the champion was re-scored on the same split
    assert better["promoted"] == (better["challenger"] > better["champion"] * 1.01) == (champ == "3"), better
    # By hand: the CLI moves champion to any version, and rolls back.
    from orchestration import registry_cli as registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlf.tracking_uri)
    assert (
        registry.main(["promote", "--model", "recstack-als", "--version", "2", "--reason", "A/B test"]) == 0
    )
    assert (
        mlf.alias_version("recstack-als", "champion") == "2"
        and mlf.alias_version("recstack-als", "previous_champion") == champ
    )
    assert tags("2")["recstack.promotion.reason"] == "A/B test"
    assert registry.main(["rollback", "--model", "recstack-als"]) == 0
    assert mlf.alias_version("recstack-als", "champion") == champ
    assert registry.main(["promote", "--model", "recstack-als", "--version", "99"]) == 2
    rows = registry.status("recstack-als")
    assert [r["version"] for r in rows] == ["3", "2", "1"] and "champion" in next(
        r for r in rows if r["version"] == champ
    )["aliases"]
