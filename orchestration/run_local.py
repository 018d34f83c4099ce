"""``make run``: materialize the whole asset graph on the embedded defaults and summarise it.

Runs are recorded in the Dagster instance under ``$DAGSTER_HOME`` (set by the Makefile), so
``make ui`` shows them afterwards beside the MLflow runs they logged.
"""

from __future__ import annotations

import argparse
import sys
import time

from recstack import names, settings

settings.configure_process()  # before dagster imports grpc


def ingest_chain() -> list:
    """The keys of the warehouse's ingest chain (raw → MID and owner history), the part of a day
    that older partitions need. (Imported late: the daily partitions start where ``make run``
    records it.)"""
    from assets.features import warehouse_assets as w

    return [
        a.key
        for a in (
            w.raw_events,
            w.opportunity_snapshot,
            w.hbase_dwd_events,
            w.hbase_mid_daily,
            w.opportunity_owner_history,
        )
    ]


def sample_chain() -> list:
    """The keys that make a day's samples (window features → opportunity features): what the
    conversion model's training days need beyond the ingest chain."""
    from assets.features import app_assets as a

    return [a.window_features.key, a.opportunity_features.key]


def training_days(end_day) -> set:
    """The feature days the conversion model of ``end_day`` reads (training, purge, holdout)."""
    from datetime import timedelta

    from assets.features.conversion import ConversionParams

    p = ConversionParams()
    last = end_day - timedelta(days=p.horizon_days)
    return {last - timedelta(days=i) for i in range(p.window_days)}


def run_warehouse(defs, instance, end_day, days: int, run_config: dict) -> list:
    """Load the dictionary, fill ``days`` daily partitions up to ``end_day`` (raw → MID, owner
    history, and the samples of the conversion model's training days and of the week before
    ``end_day``), run the whole daily chain for ``end_day``, then the conversion loop of
    ``end_day``. Returns the results."""
    from datetime import timedelta

    results = [
        defs.resolve_job_def(names.DICTIONARY_JOB).execute_in_process(
            instance=instance, run_config=run_config
        )
    ]
    job = defs.resolve_job_def(names.WAREHOUSE_JOB)
    # The samples' days, and the drift checks' trailing week before the last day (so its PSI and
    # volume checks compare against real days).
    from resources.monitoring import MonitoringResource

    week = MonitoringResource().trailing_days
    train = training_days(end_day) | {end_day - timedelta(days=i) for i in range(1, week + 1)}
    for i in range(days - 1, -1, -1):
        day = end_day - timedelta(days=i)
        sel = None if i == 0 else ingest_chain() + (sample_chain() if day in train else [])
        results.append(
            job.execute_in_process(
                instance=instance,
                partition_key=day.isoformat(),
                asset_selection=sel,
                run_config=run_config,
                raise_on_error=False,
            )
        )
        if not results[-1].success:
            return results
    results.append(
        defs.resolve_job_def(names.CONVERSION_JOB).execute_in_process(
            instance=instance, partition_key=end_day.isoformat(), run_config=run_config, raise_on_error=False
        )
    )
    return results


def print_checks(results: list) -> None:
    """One line per kind of check evaluated in the run (suites, drift, volume, freshness): how many
    passed, and each one that did not, with its description."""
    latest = {}
    for r in results:
        for e in r.get_asset_check_evaluations():
            part = f" [{e.partition}]" if getattr(e, "partition", None) else ""
            latest[(e.asset_key.to_user_string(), e.check_name)] = (e, part)
    kinds: dict[str, list] = {}
    for (_, name), ev in latest.items():
        kind = next(
            (k for k in ("freshness", "drift", "volume", "psi", "label_rate", "suite") if k in name), "other"
        )
        kinds.setdefault(kind, []).append(ev)
    print("\nAsset checks (latest evaluation of each):")
    for kind, evs in sorted(kinds.items()):
        failed = [(e, p) for e, p in evs if not e.passed]
        print(f"  {kind:<10} {len(evs) - len(failed)} of {len(evs)} pass")
        for e, p in failed:
            why = e.description or "failed (its metadata has the numbers)"
            print(f"    {e.severity.value} {e.asset_key.to_user_string()}{p} {e.check_name}: {why}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--interactions", type=int, default=None, help="synthetic interaction count (default 100k)"
    )
    ap.add_argument(
        "--warehouse-days", type=int, default=45, help="daily partitions to fill, ending yesterday"
    )
    args = ap.parse_args(argv)

    from datetime import date, timedelta

    import dagster as dg

    from recstack.settings import record_local_start

    # Before the definitions load: the daily partitions start at the first day this fills.
    record_local_start(date.today() - timedelta(days=args.warehouse_days))
    from orchestration.definitions import defs
    from recstack.settings import home

    # INFO on the console: asset logs and failures, not every engine event (the UI has those).
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if args.interactions:
        run_config["ops"] = {names.INTERACTIONS: {"config": {"n_interactions": args.interactions}}}
    t0 = time.perf_counter()
    job = defs.resolve_job_def(names.RECOMMENDATION_JOB)

    wh_config = {"loggers": run_config["loggers"]}
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
        t1 = time.perf_counter()
        end_day = date.today() - timedelta(days=1)
        wh = run_warehouse(defs, instance, end_day, args.warehouse_days, wh_config) if result.success else []
        fresh = (
            defs.resolve_job_def(names.FRESHNESS_JOB).execute_in_process(
                instance=instance, run_config=wh_config, raise_on_error=False
            )
            if wh and all(r.success for r in wh)
            else None
        )
    secs = time.perf_counter() - t0
    print("\n== RecStack: make run ==")
    ok = result.success and all(r.success for r in wh)
    print(
        f"{'SUCCESS' if ok else 'FAILED'} in {secs:.0f}s (recommendation slice {t1 - t0:.0f}s, "
        f"feature warehouse {len(wh) - 2} daily partitions up to {end_day} and the conversion loop "
        f"{time.perf_counter() - t1:.0f}s)"
    )
    latest = {}
    for r in [result, *wh]:
        for e in r.all_events:
            if e.is_step_materialization:
                m = e.step_materialization_data.materialization
                latest[m.asset_key.to_user_string()] = m
        if not r.success:
            for e in r.all_events:
                if e.is_step_failure:
                    print(f"FAILED step {e.step_key}: {e.step_failure_data.error.message.strip()[:400]}")
    print(f"{len(latest)} assets materialized (latest partition shown):")
    for key, m in latest.items():
        rows = m.metadata.get("rows") or m.metadata.get("cells")
        part = f" [{m.partition}]" if m.partition else ""
        print(
            f"  - {key}{part}"
            + (f" ({rows.value} {'rows' if 'rows' in m.metadata else 'cells'})" if rows else "")
        )
    if not ok:
        return 1
    ev = result.output_for_node("als_evaluation")
    k = ev["k"]
    print(f"\nHeld-out evaluation ({ev['split']['method']}, k={k}):")
    for model, m in ev["metrics"].items():
        print(
            f"  {model:<11} recall@{k}={m[f'recall@{k}']:.4f}  NDCG@{k}={m[f'ndcg@{k}']:.4f}  "
            f"coverage={m[f'coverage@{k}']:.3f}"
        )
    for node in ("als_tuning", "item2vec_tuning", "two_tower_tuning"):
        t = result.output_for_node(node)
        best = {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in t["best_params"].items()
            if k in t.get("searched", [])
        }
        c = t["confirmation"]
        print(
            f"Tuning {node.removesuffix('_tuning')}: validation {t['default_value']:.4f} at defaults -> "
            f"{t['best_value']:.4f} "
            f"({len(t['trials'])} trials, {t['seconds']:.0f}s) with {best}; confirmation {c['tuned']:.4f} vs "
            f"{c['default']:.4f} at defaults: "
            f"{'tuned parameters adopted' if t['adopted'] else 'defaults kept'}"
        )
    for node in (
        names.ALS_PROMOTION,
        names.ITEM2VEC_PROMOTION,
        "two_tower_promotion",
        "entity_vectors_promotion",
    ):
        promo = result.output_for_node(node)
        print(
            f"Promotion {promo['model']} v{promo.get('challenger_version', '?')} "
            f"{'-> champion' if promo['promoted'] else 'stays challenger'}: {promo['reason']}"
        )
    i2v = result.output_for_node("item2vec_evaluation")
    print("item2vec comparison (same split, users item2vec can serve):")
    for model, m in i2v["metrics"].items():
        print(f"  {model:<11} recall@{k}={m[f'recall@{k}']:.4f}  NDCG@{k}={m[f'ndcg@{k}']:.4f}")
    fu = result.output_for_node(names.RECOMMENDATION_FUSION)
    fk, fm = fu["k"], fu["metrics"]["fused"]
    print(
        f"Per-user lists (time split, all {fm['n_users']} test users, {fm['cold_users']} cold; fusion "
        f"{fu['fusion']['method']} chosen on validation): "
        + ", ".join(
            f"{m} NDCG@{fk}={v[f'ndcg@{fk}']:.4f} recall@{fk}={v[f'recall@{fk}']:.4f}"
            for m, v in fu["metrics"].items()
        )
    )
    if names.USER_RECOMMENDATIONS in latest:
        md = latest[names.USER_RECOMMENDATIONS].metadata
        print(f"user_recommendations: {md['users'].value} users x {md['k'].value} ({md['rows'].value} rows)")
    if (
        names.ENTITY_VECTORS in latest
        and "same_industry_precision_at_10" in latest[names.ENTITY_VECTORS].metadata
    ):
        md = latest[names.ENTITY_VECTORS].metadata
        print(
            f"Similar entities: same-industry precision@10 {md['same_industry_precision_at_10'].value:.3f} "
            f"(structured fields alone {md['fields_only_precision_at_10'].value:.3f})"
        )
    kb = result.output_for_node("kb_search_evaluation")
    fusion = result.output_for_node(names.KB_SEARCH_FUSION).label
    print(
        f"Knowledge-base search, held-out queries MRR@10: two-tower {kb['two_tower']['mrr@10']:.3f}, BM25 "
        f"{kb['bm25']['mrr@10']:.3f}"
        + f"; hybrid fused by {fusion} (chosen on validation); "
        + ", ".join(f"{m} {v['mrr@10']:.3f}" for m, v in kb.get("modes", {}).items())
    )
    look = result.output_for_node(names.LOOKALIKE_EVALUATION)
    lm = look["metrics"]
    print(
        f"Lookalike backtest (audience {look['size']}, {look['targets']} items): "
        + ", ".join(f"{s} recall {v['recall']:.3f}" for s, v in lm.items())
        + f"; winner {look['winner']}"
    )
    mil = result.output_for_node(names.MILVUS_COLLECTION_ENTITIES)
    print(
        f"Milvus: alias {mil['alias']} -> {mil['collection']} ({mil['rows']} rows, recall@10 "
        f"{mil['recall@10']:.3f})"
    )
    if "libsvm_datasets" in latest:
        md = latest["libsvm_datasets"].metadata
        print(
            f"\nLibSVM for {latest['libsvm_datasets'].partition}: {md['rows'].value} opportunities x "
            f"{md['features'].value} features, {md['libsvm_bytes'].value / 1e6:.1f} MB "
            f"({md['size_vs_jsonl'].value:.2f}x the JSON-lines size) at {md['path'].value}"
        )
    if names.CONVERSION_MODEL_ASSET in latest:
        cm = wh[-1].output_for_node(names.CONVERSION_MODEL_ASSET)
        m, lg = cm["metrics"], cm["logistic"]
        promo = wh[-1].output_for_node(names.CONVERSION_PROMOTION)
        asg = latest[names.OPPORTUNITY_ASSIGNMENT].metadata
        print(
            f"Conversion model v{cm['model_version']} (LightGBM, {cm['train_rows']} samples, "
            f"horizon {cm['horizon_days']} days; "
            f"held-out later days {', '.join(cm['holdout_days'])}, {cm['holdout_rows']} samples): AUC "
            f"{m['auc']:.3f} (logistic {lg['auc']:.3f}); top decile converts {m['top_decile_rate']:.3f} vs "
            f"base rate {m['base_rate']:.3f} = {m['top_decile_lift']:.2f}x lift\n"
            f"Promotion {names.CONVERSION_MODEL} v{cm['model_version']} "
            f"{'-> champion' if promo['promoted'] else 'stays challenger'}: {promo['reason']}; learned "
            f"feature list {promo['learned_features']['count']} features\n"
            f"opportunity_scores: {latest[names.OPPORTUNITY_SCORES].metadata['rows'].value} open "
            "opportunities; "
            f"opportunity_assignment: {asg['rows'].value} assigned ({asg['left_unassigned'].value} left, "
            f"capacity {asg['daily_capacity'].value}/person) -> {', '.join(asg['files'].value.values())}"
        )
    print_checks([result, *wh, *([fresh] if fresh else [])])
    h = home()
    print(f"\nState: {h}  (make clean removes it)")
    print("Dagster UI: make ui  → http://127.0.0.1:3000  (runs, assets, checks, metadata)")
    print(f"MLflow UI:  make ui  → http://127.0.0.1:5000  (tracking store {h / 'mlflow' / 'mlflow.db'})")
    print("Recall API: make serve → http://127.0.0.1:8000/docs  (similar entities, lookalike, KB search)")
    print(f"DAGSTER_HOME={settings.dagster_home()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
