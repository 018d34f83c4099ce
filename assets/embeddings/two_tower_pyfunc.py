"""MLflow pyfunc for the two-tower encoder ("models from code": weights load as tensors only).

``predict`` takes a list of strings (or a DataFrame with a ``text`` column) and returns one
unit vector per text.
"""

import numpy as np
import pandas as pd

import mlflow
from assets.embeddings.two_tower import TwoTower


class TwoTowerPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = TwoTower.load(context.artifacts["encoder"])

    def predict(self, context, model_input, params=None):
        texts = (
            model_input["text"].tolist()
            if isinstance(model_input, pd.DataFrame)
            else [str(t) for t in model_input]
        )
        return np.asarray(self.model.encode(texts))


mlflow.models.set_model(TwoTowerPyfunc())
