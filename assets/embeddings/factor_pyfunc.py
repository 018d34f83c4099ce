"""MLflow pyfunc for a :class:`FactorModel` ("models from code": nothing is unpickled on load).

``predict`` takes a DataFrame with a ``user_id`` column (and optional ``params={"k": 10}``) and
returns one row per user with ``item_ids`` and ``scores`` lists.
"""

import pandas as pd

import mlflow
from assets.embeddings.factor_model import FactorModel


class FactorModelPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = FactorModel.load(context.artifacts["factors"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        k = int((params or {}).get("k", 10))
        ids, scores = self.model.recommend(model_input["user_id"].to_numpy(), k=k)
        return pd.DataFrame(
            {"user_id": model_input["user_id"].to_numpy(), "item_ids": list(ids), "scores": list(scores)}
        )


mlflow.models.set_model(FactorModelPyfunc())
