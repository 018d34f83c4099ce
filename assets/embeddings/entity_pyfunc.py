"""MLflow pyfunc for entity vectors ("models from code": word vectors load from ``.npz``, no pickle).

``predict`` takes a DataFrame of profiles (``description`` and the structured fields ``location``,
``type``, ``tags``) and returns one unit vector per row, in the space of ``entity_vectors``.
"""

import numpy as np
import pandas as pd

import mlflow
from assets.embeddings.entity_vectors import EntityEncoder


class EntityEncoderPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.encoder = EntityEncoder.load(context.artifacts["encoder"])

    def predict(self, context, model_input, params=None):
        df = (
            model_input
            if isinstance(model_input, pd.DataFrame)
            else pd.DataFrame({"description": list(model_input)})
        )
        return np.asarray(self.encoder.encode(df)[0])


mlflow.models.set_model(EntityEncoderPyfunc())
