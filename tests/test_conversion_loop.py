"""The CRM loop through Dagster: matured, time-aligned samples → LightGBM registered and promoted by
policy → every open opportunity scored → the unassigned ones assigned under capacity, per line;
and the learned feature list taking over the next subset export."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from assets.features.conversion import ConversionParams
from recstack import names
from resources.feature_store.resource import CrmSourceResource

pytestmark = pytest.mark.slow
END = date.today() - timedelta(days=1)
P = ConversionParams()
CRM = CrmSourceResource(n_users=600, n_opportunities=500)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _failures(res):
    return [e.step_failure_data.error.message[:600] for e in res.all_events if e.is_step_failure]


def test_conversion_loop_end_to_end(recstack_home, monkeypatch):
    from orchestration.definitions import build_definitions
    from orchestration.run_local import ingest_chain, sample_chain, training_days

    defs = build_definitions("local", {"crm": CRM})
    train = training_days(END)
    assert min(train) == END - timedelta(days=P.horizon_days + P.window_days - 1)
    assert max(train) == END - timedelta(days=P.horizon_days)
    first = min(train) - timedelta(days=2)
    with dg.DagsterInstance.get() as instance:
        assert defs.resolve_job_def(names.DICTIONARY_JOB).execute_in_process(instance=instance).success
        wh = defs.resolve_job_def(names.WAREHOUSE_JOB)
        conv = defs.resolve_job_def(names.CONVERSION_JOB)
        # Before the snapshots up to END are in, END's labels are unknown: a clear failure.
        day = first
        while day <= END:
            sel = None if day == END else ingest_chain() + (sample_chain() if day in train else [])
            res = wh.execute_in_process(
                instance=instance,
                partition_key=day.isoformat(),
                asset_selection=sel,
                run_config=QUIET,
                raise_on_error=False,
            )
            assert res.success, _failures(res)
            day += timedelta(days=1)
        res = conv.execute_in_process(
            instance=instance, partition_key=END.isoformat(), run_config=QUIET, raise_on_error=False
        )
        assert res.success, _failures(res)
        samples = res.output_for_node(names.CONVERSION_SAMPLES)
        model = res.output_for_node(names.CONVERSION_MODEL_ASSET)
        promo = res.output_for_node(names.CONVERSION_PROMOTION)
        scores = res.output_for_node(names.OPPORTUNITY_SCORES)
        assignment = res.output_for_node(names.OPPORTUNITY_ASSIGNMENT)

        # Samples: exactly the training days, each open opportunity once per day.
        assert sorted(samples["feature_day"].unique()) == sorted(d.isoformat() for d in train)
        assert not samples.duplicated(["feature_day", "opp_id"]).any()
        assert 0.05 < samples["label"].mean() < 0.5
        # Labels against the simulator itself: 1 exactly when the opportunity converts in (D, D + 14].
        from assets.ingest.crm import CrmSpec, opportunities_on

        spec = CrmSpec(n_users=CRM.n_users, n_opportunities=CRM.n_opportunities)
        d = max(train)
        later = pd.concat([opportunities_on(d + timedelta(days=k), spec) for k in range(P.horizon_days + 2)])
        dated = pd.to_datetime(later.loc[later["converted_on"] != "", "converted_on"]).dt.date
        converting = later.loc[dated.index[(dated > d) & (dated <= d + timedelta(days=P.horizon_days))]]
        day_rows = samples[samples["feature_day"] == d.isoformat()]
        assert (
            day_rows["label"].tolist()
            == day_rows["opp_id"].isin(set(converting["opp_id"])).astype(int).tolist()
        )
        assert 0 < day_rows["label"].sum() < len(day_rows)
        # Features: only events on or before D. Recomputed now that every later day is in the
        # store, the day's samples are what they were when D was the latest day.
        again = wh.execute_in_process(
            instance=instance,
            partition_key=d.isoformat(),
            asset_selection=sample_chain(),
            run_config=QUIET,
        ).output_for_node(names.OPPORTUNITY_FEATURES)
        pd.testing.assert_frame_equal(
            again.reset_index(drop=True),
            day_rows.drop(columns=["feature_day", "label"])[list(again.columns)].reset_index(drop=True),
        )
        # The model learned the planted signal, measured on later days than it trained on.
        days = sorted(samples["feature_day"].unique())
        assert (
            model["holdout_days"] == days[-P.holdout_days :] and model["train_days"] == days[: P.train_days]
        )
        # Purged: the last training day's label window ends on the first held-out day.
        gap = date.fromisoformat(model["holdout_days"][0]) - date.fromisoformat(model["train_days"][-1])
        assert gap == timedelta(days=P.horizon_days)
        assert model["metrics"]["auc"] > 0.62, model["metrics"]
        assert model["metrics"]["top_decile_lift"] > 1.3, model["metrics"]
        # First version: beats the constant-score baseline and becomes the champion.
        assert promo["promoted"] and "baseline" in promo["reason"]
        from resources.mlflow_tracking import MlflowResource

        ml = defs.resources["mlflow_tracking"]
        assert isinstance(ml, MlflowResource)
        assert ml.alias_version(names.CONVERSION_MODEL, names.CHAMPION) == model["model_version"]
        # Scores: every open opportunity of END, ranked per line by the champion. (END's own
        # materialization: the latest overall is the recomputed training day above, whose count
        # equals END's only on some calendar days.)
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(names.OPPORTUNITY_FEATURES), asset_partitions=[END.isoformat()]
            ),
            limit=10,
        ).records
        feats = max(records, key=lambda r: r.storage_id).asset_materialization.metadata["rows"].value
        assert len(scores) == feats and set(scores["model_version"]) == {model["model_version"]}
        top = scores[scores["rank"] == 1]
        assert (top.set_index("line")["score"] == scores.groupby("line")["score"].max()).all()
        # Assignment: only unassigned opportunities, nobody over capacity, best scores first.
        unassigned = set(scores.loc[scores["owner"] == "", "opp_id"])
        assert len(assignment) > 0 and set(assignment["opp_id"]) <= unassigned
        assert assignment.groupby("owner").size().max() <= 3
        assert not assignment["opp_id"].duplicated().any()
        files = (
            instance.get_latest_materialization_event(dg.AssetKey(names.OPPORTUNITY_ASSIGNMENT))
            .asset_materialization.metadata["files"]
            .value
        )
        for line, path in files.items():
            assert path.endswith(f"/{line}.csv")
            csv = pd.read_csv(path, dtype={"opp_id": str, "owner": str})
            assert list(csv.columns) == ["opp_id", "owner", "score", "rank"]
            assert csv["rank"].tolist() == list(range(1, len(csv) + 1))
            assert csv["score"].is_monotonic_decreasing
        # The champion's learned list replaces the hand-written default in the next subset export.
        learned = promo["learned_features"]
        listed = [ln for ln in open(learned["path"]).read().splitlines() if not ln.startswith("#")]
        assert len(listed) == learned["count"] > 0
        res = wh.execute_in_process(
            instance=instance, partition_key=END.isoformat(), run_config=QUIET, raise_on_error=False
        )
        assert res.success, _failures(res)
        manifest = res.output_for_node("libsvm_datasets")
        sub = manifest["models"][P.feature_list]
        assert sub["features"] == len(listed)
        index_file = sub["path"].replace(".libsvm", ".index.tsv")
        assert [ln.split("\t")[1] for ln in open(index_file).read().splitlines()] == listed
        # The predict set names each row's opportunity, aligned by row.
        ids = open(manifest["full"].replace("full.libsvm", "full.ids")).read().split()
        assert len(ids) == manifest["rows"] and set(ids) == set(scores["opp_id"])

        # Champion/challenger: a second version on the same days does not beat the champion; an
        # engineer's manual move is picked up by the sensor, which rescores the latest day.
        from orchestration import registry_cli as registry
        from orchestration.sensors import champion_alias_sensor

        res = conv.execute_in_process(
            instance=instance, partition_key=END.isoformat(), run_config=QUIET, raise_on_error=False
        )
        assert res.success, _failures(res)
        promo2 = res.output_for_node(names.CONVERSION_PROMOTION)
        assert promo2["challenger_version"] == "2" and not promo2["promoted"]
        resources = {"mlflow_tracking": ml}
        ctx = dg.build_sensor_context(instance=instance, cursor=None, resources=resources, definitions=defs)
        first = champion_alias_sensor.evaluate_tick(ctx)
        assert not [r for r in first.run_requests or [] if r.job_name == names.RESCORE_OPPORTUNITIES_JOB]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", ml.tracking_uri)
        args = ["promote", "--model", names.CONVERSION_MODEL, "--version", "2", "--reason", "manual"]
        assert registry.main(args) == 0
        ctx = dg.build_sensor_context(
            instance=instance, cursor=first.cursor, resources=resources, definitions=defs
        )
        reqs = champion_alias_sensor.evaluate_tick(ctx).run_requests
        assert [(r.job_name, r.partition_key) for r in reqs] == [
            (names.RESCORE_OPPORTUNITIES_JOB, END.isoformat())
        ]
        run = defs.resolve_job_def(names.RESCORE_OPPORTUNITIES_JOB).execute_in_process(
            instance=instance, partition_key=reqs[0].partition_key, run_config=QUIET
        )
        assert set(run.output_for_node(names.OPPORTUNITY_SCORES)["model_version"]) == {"2"}
