"""The real-time writer killed in the middle of a micro-batch: its store writes half of the
batch's cells, then the process dies as a SIGKILL would leave it (no cleanup, no commit).

    python -m tests.support.realtime_crash LANDING CHECKPOINT REJECTED STORE
"""

from __future__ import annotations

import os
import sys


class HalfThenDie:
    """A store that writes the first half of the first non-empty batch and kills the process."""

    def __init__(self, store):
        self.store = store

    def put_cells(self, table, cells):
        cells = list(cells)
        self.store.put_cells(table, cells[: len(cells) // 2])
        os._exit(9)


def main(landing: str, checkpoint: str, rejected: str, store_path: str) -> None:
    from assets.features.layers import table_specs
    from assets.features.streaming import event_stream, start_realtime_dwd
    from assets.features.warehouse_config import load_warehouse_config
    from resources.feature_store.embedded import EmbeddedStore
    from resources.spark import SparkResource

    store = EmbeddedStore(store_path)
    for spec in table_specs().values():
        store.create_table(spec)
    spark = SparkResource(master="local[1]", shuffle_partitions=1).get_session()
    query = start_realtime_dwd(
        spark,
        event_stream(spark, "files", landing),
        load_warehouse_config(),
        lambda: HalfThenDie(store),
        checkpoint,
        rejected,
        0.5,
    )
    query.awaitTermination()


if __name__ == "__main__":
    main(*sys.argv[1:5])
