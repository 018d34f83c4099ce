"""The real-time writer: ``python -m orchestration.realtime`` runs the streaming query of
:mod:`assets.features.streaming` until stopped (a Deployment beside the code location in
production; ``make realtime`` here).

Locally the events are JSON-lines files dropped into ``RECSTACK_HOME/landing/events``; with
``RECSTACK_REALTIME_SOURCE=kafka`` they are read from ``RECSTACK_KAFKA_TOPIC`` on
``RECSTACK_KAFKA_BOOTSTRAP`` (Spark's Kafka source; its package must be on the Spark classpath,
and this path is not tested here). The cells go to this deployment's feature store.
"""

from __future__ import annotations

import argparse
import logging

from recstack import settings


def main(argv: list[str] | None = None) -> int:
    home = settings.home()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", default=settings.realtime_source(), choices=["files", "kafka"])
    ap.add_argument("--landing", default=str(home / "landing" / "events"))
    ap.add_argument("--checkpoint", default=str(home / "realtime" / "checkpoint"))
    ap.add_argument("--rejected", default=str(home / "realtime" / "rejected"))
    ap.add_argument("--store", default=None, help="an embedded store file (default: this deployment's store)")
    ap.add_argument("--trigger-seconds", type=float, default=1.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger("recstack.realtime")

    from assets.features.layers import table_specs
    from assets.features.streaming import event_stream, start_realtime_dwd
    from assets.features.warehouse_config import DEFAULT_PATH, load_warehouse_config
    from resources.feature_store.resource import EmbeddedConfig, deployment_backend, open_backend
    from resources.spark import SparkResource

    store = open_backend(EmbeddedConfig(path=args.store) if args.store else deployment_backend())
    for spec in table_specs().values():
        store.create_table(spec)
    spark = SparkResource(master=settings.realtime_spark_master()).get_session()
    kafka = {"kafka.bootstrap.servers": settings.kafka_bootstrap(), "subscribe": settings.kafka_topic()}
    events = event_stream(spark, args.source, args.landing, kafka)
    query = start_realtime_dwd(
        spark,
        events,
        load_warehouse_config(DEFAULT_PATH),
        lambda: store,
        args.checkpoint,
        args.rejected,
        args.trigger_seconds,
        on_batch=lambda b: log.info("realtime batch %s", b),
    )
    log.info(
        "realtime DWD writer started: %s -> the feature store",
        args.landing if args.source == "files" else "kafka",
    )
    query.awaitTermination()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
