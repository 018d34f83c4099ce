"""``make run``: materialize the whole asset graph on the embedded defaults and summarise it.

Runs are recorded in the Dagster instance under ``$DAGSTER_HOME`` (set by the Makefile), so
``make ui`` shows them afterwards beside the MLflow runs they logged.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interactions", type=int, default=None, help="synthetic interaction count (default 100k)")
    args = ap.parse_args(argv)

    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.settings import home

    # INFO on the console: asset logs and failures, not every engine event (the UI has those).
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if args.interactions:
        run_config["ops"] = {"interactions": {"config": {"n_interactions": args.interactions}}}
    t0 = time.perf_counter()
    job = defs.resolve_job_def("recommendation_slice")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
    secs = time.perf_counter() - t0
    mats = [m for e in result.all_events if e.is_step_materialization for m in [e.step_materialization_data.materialization]]
    print("\n== RecStack: make run ==")
    print(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILED'} in {secs:.0f}s; {len(mats)} assets materialized:")
    for m in mats:
        rows = m.metadata.get("rows")
        print(f"  - {m.asset_key.to_user_string()}" + (f" ({rows.value} rows)" if rows else ""))
    if not result.success:
        for e in result.all_events:
            if e.is_step_failure:
                print(f"FAILED step {e.step_key}: {e.step_failure_data.error.message.strip()[:400]}")
        return 1
    ev = result.output_for_node("als_evaluation")
    k = ev["k"]
    print(f"\nHeld-out evaluation ({ev['split']['method']}, k={k}):")
    for model, m in ev["metrics"].items():
        print(f"  {model:<11} recall@{k}={m[f'recall@{k}']:.4f}  NDCG@{k}={m[f'ndcg@{k}']:.4f}  coverage={m[f'coverage@{k}']:.3f}")
    h = home()
    print(f"\nState: {h}  (make clean removes it)")
    print("Dagster UI: make ui  → http://127.0.0.1:3000  (runs, assets, checks, metadata)")
    print(f"MLflow UI:  make ui  → http://127.0.0.1:5000  (tracking store {h / 'mlflow' / 'mlflow.db'})")
    print(f"DAGSTER_HOME={os.environ.get('DAGSTER_HOME', '(not set: ephemeral)')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
