"""MLflow pyfunc for the conversion model ("models from code": a LightGBM text model and a JSON
feature list, nothing unpickled).

``predict`` takes a DataFrame of feature columns (missing ones read as NaN) and returns one
conversion probability per row.
"""

import numpy as np
import pandas as pd

import mlflow
from assets.features.conversion import ConversionModel


class ConversionPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = ConversionModel.load(context.artifacts["conversion"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        return np.asarray(self.model.predict(model_input), np.float64)


mlflow.models.set_model(ConversionPyfunc())
