"""Property-based fuzzing of every endpoint from the app's own OpenAPI schema (schemathesis), with
the full set of response checks: no 5xx, only documented status codes and content types, bodies
that match their schema, every schema-valid request accepted and every schema-invalid one rejected."""

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, reject, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from resources.event_log import EventLog
from serving.app import create_app
from serving.schemas import MAX_ID
from serving.state import StateHolder
from tests.support.serving_fixtures import build_state

pytestmark = pytest.mark.serving

_STATE = build_state(n_entities=120, n_interactions=2000)


def _feature_store():
    """An empty warehouse store with its tables: every id is unknown, an explicit empty answer."""
    from assets.features.layers import table_specs
    from resources.feature_store.embedded import EmbeddedStore

    store = EmbeddedStore(Path(tempfile.mkdtemp(prefix="recstack-fuzz-store-")) / "store.sqlite")
    for spec in table_specs().values():
        store.create_table(spec)
    return store


# Feedback is recorded (into a temporary folder), so /v1/feedback answers as in production.
APP = create_app(
    StateHolder(lambda: _STATE),
    api_key="",
    event_log=EventLog(tempfile.mkdtemp(prefix="recstack-fuzz-events-")),
    feature_store=_feature_store(),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Valid and invalid inputs alike (positive and negative generation).
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], database="none")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
MAX_EXAMPLES = 60
CALLS: dict[str, int] = {}


def _ints(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _ints(v)
    elif isinstance(value, list):
        for v in value:
            yield from _ints(v)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case):
    # The generator bounds integers through doubles: a "valid" id can come out a few hundred above
    # the schema's int64 maximum. Such an example is not valid; drop it rather than loosen the schema.
    if case.meta.generation.mode == GenerationMode.POSITIVE and any(i > MAX_ID for i in _ints(case.body)):
        reject()
    holder = APP.state.holder
    if not holder.state.ready:
        holder.reload(force=True)
    CALLS[f"{case.method} {case.path}"] = CALLS.get(f"{case.method} {case.path}", 0) + 1
    case.call_and_validate(checks=CHECKS)


def test_the_fuzzing_ran_every_operation():
    """Runs after the parametrized test (file order): every operation was called many times."""
    ops = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in schema.get_all_operations())}
    assert ops >= {
        "POST /v1/similar",
        "POST /v1/lookalike",
        "POST /v1/kb/search",
        "GET /healthz",
        "GET /readyz",
    }
    calls = {k.upper().split(" ", 1)[0] + " " + k.split(" ", 1)[1]: v for k, v in CALLS.items()}
    # A POST has a body to vary; a GET without parameters has few distinct examples.
    missing = {op: calls.get(op, 0) for op in ops if calls.get(op, 0) < (20 if op.startswith("POST") else 1)}
    assert not missing, missing
