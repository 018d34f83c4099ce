"""What the embedding families' asset modules share: the vectors' blocking check, drift check and
output, and the data version recorded with a model."""

import dagster as dg
import numpy as np
import pandas as pd

from assets.common.drift import probe_snapshot, snapshot_shift
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.vectors import VectorMeta, vector_profile, vectors_to_table
from resources.monitoring import MonitoringResource
from resources.validation import GreatExpectationsResource, gate

SNAPSHOT = "probe_snapshot"  # the metadata entry the next version's drift check reads


def data_version(df: pd.DataFrame) -> str:
    """A content hash of a frame, recorded as the model's data version."""
    return format(int(pd.util.hash_pandas_object(df, index=False).sum()) & 0xFFFFFFFFFFFF, "012x")


def vector_outputs(
    context,
    ids,
    vecs,
    model: FactorModel,
    kind: str,
    asset: str,
    gx: GreatExpectationsResource,
    monitoring: MonitoringResource,
):
    """Yield the vectors' blocking check (suite ``vectors``), their drift against the previous
    version, and, if both passed, the contract table."""
    meta = VectorMeta(
        metric="ip",
        normalized=True,
        model_name=model.params.get("model_name", ""),
        model_version=str(model.params.get("model_version", "")),
        extra={"entity": kind},
    )
    table = vectors_to_table(ids, vecs, meta)
    yield from gate(gx.validate(vector_profile(table), "vectors"), f"{asset}_suite")
    drift_meta = yield from monitor_vectors(context, monitoring, asset, ids, vecs)
    yield dg.Output(
        table,
        metadata={
            "rows": table.num_rows,
            "dim": int(vecs.shape[1]),
            "model_version": meta.model_version,
            "metric": "ip (unit vectors)",
            **drift_meta,
        },
    )


def monitor_vectors(context, monitoring: MonitoringResource, asset: str, ids, vecs):
    """Yield the drift check of a new vectors version (:func:`vectors_drift`); under
    ``monitoring.blocking`` a failure then stops the step. Returns the metadata to add."""
    result, meta = vectors_drift(context, monitoring, asset, ids, vecs)
    yield result
    if not result.passed and monitoring.blocking:
        raise dg.Failure(description=f"blocking drift check failed: {result.description}")
    return meta


def vectors_drift(context, monitoring: MonitoringResource, asset: str, ids, vecs):
    """The drift check of a new vectors version against the previous one's probe snapshot
    (:func:`~assets.common.drift.snapshot_shift`): it fails when the probes keep less than
    ``monitoring.min_neighbour_overlap`` of their top-10 neighbours. Returns the check result and
    the metadata to add (this version's snapshot, and the figures)."""
    ids, vecs = np.asarray(ids, np.int64), np.asarray(vecs, np.float32)
    snap = probe_snapshot(ids, vecs)
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    previous = (
        event.asset_materialization.metadata.get(SNAPSHOT) if event and event.asset_materialization else None
    )
    md: dict = {"threshold": monitoring.min_neighbour_overlap}
    passed, description = True, None
    if previous is None:
        md["note"] = "no previous version with a snapshot: passes"
    else:
        shift = snapshot_shift(previous.value, ids, vecs)
        # NaN (no cosine across dimensions, no probe left) reads "n/a" in the UI.
        md.update(
            {k: (round(v, 4) if v == v else "n/a") if isinstance(v, float) else v for k, v in shift.items()}
        )
        if shift["probes"] and shift["top10_overlap"] < monitoring.min_neighbour_overlap:
            passed = False
            description = (
                f"the probes kept {shift['top10_overlap']:.0%} of their top-10 neighbours "
                f"(threshold {monitoring.min_neighbour_overlap:.0%}); mean cosine shift "
                f"{md['mean_cosine_shift']}"
            )
    result = dg.AssetCheckResult(
        check_name=f"{asset}_drift",
        asset_key=asset,
        passed=passed,
        severity=monitoring.severity(),
        description=description,
        metadata=md,
    )
    out = {SNAPSHOT: dg.MetadataValue.json(snap)}
    if "top10_overlap" in md:
        out.update(top10_overlap=md["top10_overlap"], mean_cosine_shift=md["mean_cosine_shift"])
    return result, out


def vectors_check(asset: str) -> list[dg.AssetCheckSpec]:
    """The blocking ``vectors`` suite check of a vector-table asset."""
    return [
        dg.AssetCheckSpec(
            f"{asset}_suite",
            asset=asset,
            blocking=True,
            description="expectations/vectors.json: unique ids, one dimension, finite, unit norm",
        ),
        dg.AssetCheckSpec(
            f"{asset}_drift",
            asset=asset,
            blocking=True,
            description="top-10 neighbour overlap and cosine shift of fixed probes against the "
            "previous version",
        ),
    ]
