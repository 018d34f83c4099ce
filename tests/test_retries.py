"""Steps that talk to external systems retry transient errors only.

A failed gate, an ``InputError`` or a bug fails once with its message; a dropped connection is
retried under the step's policy. Attempts are counted from the run's events.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from assets.features.layers import table_specs
from assets.features.warehouse_assets import hbase_dwd_events
from orchestration.definitions import build_definitions
from resources.feature_store.resource import EmbeddedConfig, FeatureStoreResource
from resources.monitoring import MonitoringResource
from resources.retries import EXTERNAL_RETRY, is_transient, transient_only
from resources.spark import SparkResource
from resources.storage import VersionedIOManager
from resources.validation import GreatExpectationsResource, InputError

FAST_RETRY = dg.RetryPolicy(max_retries=2, delay=0)


def _attempts(result: dg.ExecuteInProcessResult, step: str) -> int:
    return sum(
        1 for e in result.all_events if e.step_key == step and e.event_type == dg.DagsterEventType.STEP_START
    ) + sum(
        1
        for e in result.all_events
        if e.step_key == step and e.event_type == dg.DagsterEventType.STEP_RESTARTED
    )


def _failure_message(result: dg.ExecuteInProcessResult, step: str) -> str:
    return next(
        e.step_failure_data.error.message
        for e in result.all_events
        if e.is_step_failure and e.step_key == step
    )


def test_a_failed_gate_is_not_retried(tmp_path):
    """hbase_dwd_events (policy: 3 retries) with cells that fail its suite: one attempt, the suite's
    message."""

    @dg.asset(name="raw_events", partitions_def=hbase_dwd_events.partitions_def)
    def bad_raw_events():
        # A feature name in capitals breaks the qualifier pattern of expectations/dwd_events.json.
        return pd.DataFrame(
            {
                "event_id": ["e1"],
                "entity_type": ["user"],
                "entity_id": ["u1"],
                "feature": ["LOGIN"],
                "line": ["01"],
                "event_ts": ["2026-11-27T10:00:00Z"],
                "value": [1.0],
                "detail": ["{}"],
            }
        )

    store = FeatureStoreResource(backend=EmbeddedConfig(path=str(tmp_path / "store.sqlite")))
    result = dg.materialize(
        [bad_raw_events, hbase_dwd_events],
        partition_key="2026-11-27",
        raise_on_error=False,
        resources={
            "feature_store": store,
            "gx": GreatExpectationsResource(),
            # The DWD asset takes the day's events by reference, as a Parquet file.
            "io_manager": VersionedIOManager(root=str(tmp_path / "storage")),
            "spark": SparkResource(),  # declared, not started: the pandas engine is the default
            "monitoring": MonitoringResource(),
        },
    )
    assert not result.success
    assert _attempts(result, "hbase_dwd_events") == 1
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
    msg = _failure_message(result, "hbase_dwd_events")
    assert (
        "suite 'dwd_events' failed 1 of 4 expectations" in msg
        and "expect_column_values_to_match_regex(qualifier)" in msg
    )
    assert list(store.open(table_specs().values()).scan("dwd_events")) == []  # nothing was written


def _counting_asset(exc_factory, calls: list):
    @dg.asset(retry_policy=FAST_RETRY)
    @transient_only
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise exc_factory()
        return len(calls)

    return flaky


@pytest.mark.parametrize(
    "exc", [lambda: ConnectionResetError("peer reset"), lambda: TimeoutError("read timed out")]
)
def test_a_transient_error_is_retried(exc):
    calls: list = []
    result = dg.materialize([_counting_asset(exc, calls)])
    assert result.success and len(calls) == 3
    assert result.output_for_node("flaky") == 3
    assert _attempts(result, "flaky") == 3


@pytest.mark.parametrize(
    "exc, text",
    [
        (
            lambda: InputError("rating 'good' is not a number", "x.csv", 2),
            "x.csv: row 2: rating 'good' is not a number",
        ),
        (lambda: KeyError("als_model"), "KeyError: 'als_model' (deterministic: not retried)"),
        (lambda: dg.Failure("gate said no"), "gate said no"),
    ],
)
def test_a_deterministic_error_fails_once_with_its_message(exc, text):
    calls: list = []
    result = dg.materialize([_counting_asset(exc, calls)], raise_on_error=False)
    assert not result.success and len(calls) == 1
    assert text in _failure_message(result, "flaky")


def test_transient_classification_follows_the_cause():
    class RpcError(Exception):
        def __init__(self, name):
            self._name = name

        def code(self):
            return type("Status", (), {"name": self._name})()

    assert is_transient(RpcError("UNAVAILABLE")) and not is_transient(RpcError("INVALID_ARGUMENT"))
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as inner:
            raise RuntimeError("could not reach Milvus") from inner
    except RuntimeError as outer:
        assert is_transient(outer)
    assert not is_transient(ValueError("bad")) and not is_transient(dg.Failure("no"))


def test_every_step_with_the_external_policy_retries_transient_errors_only():
    """A step given EXTERNAL_RETRY without the wrapper would retry a failed gate again."""
    defs = build_definitions("local")
    with_policy = [
        a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.op.retry_policy == EXTERNAL_RETRY
    ]
    assert len(with_policy) >= 9
    for a in with_policy:
        assert getattr(a.op.compute_fn.decorated_fn, "transient_only", False), a.key
