"""Property-based fuzzing of every endpoint from the app's own OpenAPI schema (schemathesis):
whatever the input, the service answers and never with a 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from serving.app import create_app
from serving.state import StateHolder
from tests.serving_fixtures import build_state

pytestmark = pytest.mark.serving

_STATE = build_state(n_entities=120, n_interactions=2000)
APP = create_app(StateHolder(lambda: _STATE), api_key="")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Valid and invalid inputs alike (positive and negative generation): none may produce a 5xx.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], database="none")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    holder = APP.state.holder
    if not holder.state.ready:
        holder.reload(force=True)
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path} {case.body!r} -> {response.status_code} {response.text[:300]}"
