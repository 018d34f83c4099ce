"""The REST recall service: similar entities, lookalike audiences and knowledge-base search.

``serving.app:app`` is the FastAPI application (``make serve`` locally; gunicorn with uvicorn
workers in production). It serves the models behind the ``champion`` alias in the MLflow
registry (``challenger`` until a champion exists) with the indexes published for them, and
reloads atomically when an alias or a published index moves.
"""
