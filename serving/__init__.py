"""The REST recall service (FastAPI; gunicorn with uvicorn workers in production).

Not built yet: the foundation issue scopes it out. Today a registered model serves by alias
through MLflow (``mlflow.pyfunc.load_model("models:/recstack-als@champion")``).
"""
