"""Spark session resource: ``local[*]`` by default, any master URL (k8s://, yarn, spark://) in prod."""

from __future__ import annotations

import sys

from dagster import ConfigurableResource
from pydantic import Field

from recstack import settings


class SparkResource(ConfigurableResource):
    """Creates (or reuses) the process's SparkSession with the configured master."""

    master: str = "local[*]"
    app_name: str = "recstack"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    conf: dict[str, str] = Field(default_factory=dict)
    # Where iterative jobs cut their lineage (ALS checkpoints every 10 iterations; without a
    # directory it cannot, and ~20 iterations overflow the executors' stack). Empty: a local
    # temporary folder, right for local[*]; a cluster needs a shared path (hdfs://, s3a://).
    checkpoint_dir: str = ""
    # Where executors write results the driver reads back (ALS factors as Parquet). Empty: a local
    # temporary folder, right for local[*] and a one-host cluster; a cluster needs a shared path.
    scratch_dir: str = ""

    def get_session(self):
        """Return the active SparkSession for this configuration (started on first use)."""
        if self.master.startswith("local"):
            settings.configure_spark()  # loopback binding, this interpreter for the Python workers
        from pyspark.sql import SparkSession

        b = (
            SparkSession.builder.master(self.master)
            .appName(self.app_name)
            .config("spark.driver.memory", self.driver_memory)
            .config("spark.sql.shuffle.partitions", str(self.shuffle_partitions))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.showConsoleProgress", "false")
        )
        for k, v in self.conf.items():
            b = b.config(k, v)
        try:
            spark = b.getOrCreate()
        except Exception as e:
            if (
                "JAVA_GATEWAY_EXITED" in str(e)
                and "grpc" in sys.modules
                and not settings.grpc_fork_support_disabled()
            ):
                raise RuntimeError(
                    "Spark's JVM did not start: gRPC's fork handlers (a pymilvus channel is busy in this "
                    "process) broke the fork that launches it. Set GRPC_ENABLE_FORK_SUPPORT=false in the "
                    "environment "
                    "before Python starts (the Makefile and the images do)."
                ) from e
            raise
        spark.sparkContext.setLogLevel("WARN")
        if spark.sparkContext.getCheckpointDir() is None:
            import tempfile

            spark.sparkContext.setCheckpointDir(
                self.checkpoint_dir or tempfile.mkdtemp(prefix="recstack-spark-checkpoints-")
            )
        return spark
