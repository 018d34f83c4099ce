"""An app factory for gunicorn in tests: the small serving state of ``serving_fixtures``."""

from __future__ import annotations


def app():
    from serving.app import create_app
    from serving.state import StateHolder
    from tests.support.serving_fixtures import build_state

    state = build_state(n_entities=200, n_interactions=3000)
    return create_app(StateHolder(lambda: state), api_key="")
