"""Retry policies for steps that talk to external systems (one place, used by their assets)."""

from dagster import Backoff, Jitter, RetryPolicy

# HBase, Milvus and the MLflow server can drop a connection or time out under load: retry three
# times, 2 s then 4 s then 8 s (± jitter), before the step fails.
EXTERNAL_RETRY = RetryPolicy(max_retries=3, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
