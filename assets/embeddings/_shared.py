"""What the embedding families' asset modules share: the vectors' blocking check and output, and
the data version recorded with a model."""

import dagster as dg
import pandas as pd

from assets.embeddings.factor_model import FactorModel
from assets.embeddings.vectors import VectorMeta, vector_profile, vectors_to_table
from resources.validation import GreatExpectationsResource, gate


def data_version(df: pd.DataFrame) -> str:
    """A content hash of a frame, recorded as the model's data version."""
    return format(int(pd.util.hash_pandas_object(df, index=False).sum()) & 0xFFFFFFFFFFFF, "012x")


def vector_outputs(ids, vecs, model: FactorModel, kind: str, check: str, gx: GreatExpectationsResource):
    """Yield the vectors' blocking check (suite ``vectors``) and, if it passed, the contract table."""
    meta = VectorMeta(
        metric="ip",
        normalized=True,
        model_name=model.params.get("model_name", ""),
        model_version=str(model.params.get("model_version", "")),
        extra={"entity": kind},
    )
    table = vectors_to_table(ids, vecs, meta)
    yield from gate(gx.validate(vector_profile(table), "vectors"), check)
    yield dg.Output(
        table,
        metadata={
            "rows": table.num_rows,
            "dim": int(vecs.shape[1]),
            "model_version": meta.model_version,
            "metric": "ip (unit vectors)",
        },
    )


def vectors_check(asset: str) -> list[dg.AssetCheckSpec]:
    """The blocking ``vectors`` suite check of a vector-table asset."""
    return [
        dg.AssetCheckSpec(
            f"{asset}_suite",
            asset=asset,
            blocking=True,
            description="expectations/vectors.json: unique ids, one dimension, finite, unit norm",
        )
    ]
