"""The interactions → ALS → vectors → index chain as production runs it: a process of its own
whose Spark master comes from ``RECSTACK_SPARK_MASTER``.

``python -m tests.support.spark_chain HOME INTERACTIONS.parquet`` publishes the interactions in
``HOME``'s store and materializes ``als_model``, both vector tables and the user index with the
``spark`` engine; the store is left for the caller to compare.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import pandas as pd


def main(home: str, interactions_path: str) -> None:
    from orchestration.definitions import ALL_ASSETS
    from orchestration.deployments import resources_for
    from resources.spark import SparkResource
    from resources.storage import VersionedStore

    store = VersionedStore(str(Path(home) / "storage"))  # the local deployment's, under RECSTACK_HOME
    store.write(["interactions"], None, pd.read_parquet(interactions_path))
    store.write(["als_tuning"], None, {})
    resources = {
        **resources_for("local"),
        "spark": SparkResource(master=dg.EnvVar("RECSTACK_SPARK_MASTER"), driver_memory="2g"),
    }
    chain = ["als_model", "als_user_vectors", "als_item_vectors", "faiss_index_als_users"]
    result = dg.materialize(
        ALL_ASSETS,
        selection=chain,
        resources=resources,
        run_config={
            "ops": {
                "als_model": {"config": {"engine": "spark", "use_tuned": False, "rank": 8, "iterations": 5}},
                "faiss_index_als_users": {"config": {"recall_sample": 100}},
            }
        },
    )
    if not result.success:
        raise SystemExit("the chain failed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
