"""What the feature warehouse's asset modules share: the daily partitions, the store with its
tables, the validated layout, the blocking-check spec, and the drift and volume checks against
the trailing days."""

from datetime import date, datetime, timedelta

import dagster as dg
import pandas as pd

from assets.common.drift import column_profiles, column_psi, relative_change
from assets.features.export import LibsvmExport, libsvm_export
from assets.features.layers import table_specs
from assets.features.warehouse_config import DEFAULT_PATH as LAYOUT_PATH
from assets.features.warehouse_config import WarehouseConfig, load_warehouse_config
from assets.ingest.crm import CrmSpec
from recstack.settings import warehouse_start
from resources.feature_store.base import FeatureStore
from resources.feature_store.resource import (
    CrmSourceResource,
    ExportResource,
    FeatureStoreResource,
    WarehouseLayoutResource,
)
from resources.monitoring import MonitoringResource
from resources.validation import InputError

daily = dg.DailyPartitionsDefinition(start_date=warehouse_start(), end_offset=0)
# A day needs its history: backfills run one partition per run, in order.
ONE_DAY_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
# The dependency the UI shows spans the packaged layout's longest allowed window; a day reads as
# many days as the dictionary's longest window (history_needed).
HISTORY_DAYS = load_warehouse_config(LAYOUT_PATH).history_days


def day_of(context) -> date:
    """The partition's day."""
    return datetime.strptime(context.partition_key, "%Y-%m-%d").date()


def open_store(feature_store: FeatureStoreResource) -> FeatureStore:
    """The store with the warehouse tables ensured (TTL and VERSIONS from the resource)."""
    return feature_store.open(table_specs(feature_store.mid_ttl_days, feature_store.mid_versions).values())


def layout_of(warehouse_layout: WarehouseLayoutResource) -> WarehouseConfig:
    """The validated warehouse layout; a bad file fails the step naming the entry (nothing written)."""
    try:
        return load_warehouse_config(warehouse_layout.path or LAYOUT_PATH)
    except InputError as e:
        raise e.failure() from None


def crm_spec(crm: CrmSourceResource) -> CrmSpec:
    """The simulator's population sizes and seed from the CRM resource."""
    return CrmSpec(n_users=crm.n_users, n_opportunities=crm.n_opportunities, seed=crm.seed)


def suite_check(name: str, desc: str) -> dg.AssetCheckSpec:
    """The blocking suite check of a warehouse asset."""
    return dg.AssetCheckSpec(f"{name}_suite", asset=name, blocking=True, description=desc)


def write_libsvm(
    store: FeatureStore,
    exports: ExportResource,
    samples,
    model_lists: dict[str, list[str]],
    day: str,
    subfolder: str = "",
) -> tuple[LibsvmExport, dict[str, str]]:
    """:func:`~assets.features.export.libsvm_export` over the store's append-only feature index:
    the index grows first, then the files are written. Returns the export and ``relative path ->
    written path``."""
    index = {r.decode(): int(c[b"i:idx"][0]) for r, c in store.scan("feature_index")}
    export = libsvm_export(samples, index, model_lists, day, subfolder)
    # The index grows before the files name it: a crash in between leaves unused numbers, never reused ones.
    store.put_cells(
        "feature_index", [(k.encode(), b"i:idx", str(v).encode(), 0) for k, v in export.added.items()]
    )
    return export, {rel: exports.write_text(rel, text) for rel, text in export.files.items()}


PROFILES = "column_profiles"  # the metadata entry a day's PSI reference is read from


def monitor_specs(asset: str, *checks: str) -> list[dg.AssetCheckSpec]:
    """The drift and volume checks of a warehouse asset, among ``volume``, ``psi``, ``label_rate``.
    Declared blocking; they fail as a WARN unless the monitoring resource says ``blocking``."""
    what = {
        "volume": "counts against the trailing days' mean",
        "psi": "per-column population stability index against the trailing days",
        "label_rate": "the samples' label rate against the trailing days' mean",
    }
    return [
        dg.AssetCheckSpec(f"{asset}_{c}", asset=asset, blocking=True, description=what[c]) for c in checks
    ]


def trailing_metadata(context, asset: str, days: int) -> list[dict]:
    """The metadata of the latest materialization of each of the ``days`` partitions before this
    one (those that exist), newest day first; values unwrapped."""
    day = day_of(context)
    keys = [(day - timedelta(days=d)).isoformat() for d in range(1, days + 1)]
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=keys), limit=days * 10
    ).records
    latest: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: -r.storage_id):  # newest first: keep each day's last
        m = r.asset_materialization
        latest.setdefault(m.partition, {k: v.value for k, v in m.metadata.items()})
    return [latest[k] for k in keys if k in latest]


def monitor(context, monitoring: MonitoringResource, asset: str, *observed, **named):
    """Yield this partition's drift and volume check results (:func:`monitor_results`, with the
    same arguments); under ``monitoring.blocking`` a failed one then stops the step, before
    anything is written or read downstream. Returns the output metadata to add:
    ``meta = yield from monitor(...)``."""
    results, meta = monitor_results(context, monitoring, asset, *observed, **named)
    yield from results
    failed = [r for r in results if not r.passed]
    if failed and monitoring.blocking:
        raise dg.Failure(
            description="blocking drift check failed: "
            + "; ".join(r.description or r.check_name for r in failed)
        )
    return meta


def monitor_results(
    context,
    monitoring: MonitoringResource,
    asset: str,
    counts: dict[str, float] | None = None,
    frame: pd.DataFrame | None = None,
    label_rate: float | None = None,
) -> tuple[list[dg.AssetCheckResult], dict]:
    """The volume (``counts``), PSI (``frame``'s numeric columns) and label-rate checks of this
    partition against the trailing days, and the metadata the next days compare against.

    Returns the check results and the output metadata to add (the counts, the label rate and the
    column profiles). With ``monitoring.blocking``, a failed check is an ERROR (and
    :func:`monitor` stops the step)."""
    history = trailing_metadata(context, asset, monitoring.trailing_days)
    enough = len(history) >= monitoring.min_history
    sev, out, meta = monitoring.severity(), [], {}
    base = {"trailing_days": len(history), "min_history": monitoring.min_history}
    if counts is not None:
        md, bad = dict(base), []
        for name, value in counts.items():
            change = relative_change(value, [h.get(name) for h in history]) if enough else None
            md[name] = value
            md[f"{name}_change"] = round(change, 4) if change is not None else "n/a"
            if change is not None and abs(change) > monitoring.volume_tolerance:
                bad.append(f"{name} {value:g} is {change:+.0%} against the trailing mean")
        out.append(_result(asset, "volume", bad, md, sev, monitoring.volume_tolerance, enough))
        meta.update(counts)
    if frame is not None:
        profiles = column_profiles(frame.drop(columns=[c for c in ("label",) if c in frame]))
        refs = [h[PROFILES] for h in history if isinstance(h.get(PROFILES), dict)]
        md, bad = dict(base), []
        if len(refs) >= monitoring.min_history:
            scores = column_psi(refs, profiles)
            top = sorted(scores.items(), key=lambda kv: -kv[1])
            over = [c for c, v in top if v > monitoring.psi_threshold]
            md.update(
                max_psi=round(top[0][1], 4) if top else 0.0,
                worst_column=top[0][0] if top else "",
                columns_over_threshold=len(over),
                psi_top=dg.MetadataValue.md(
                    "| column | PSI |\n|---|---|\n" + "\n".join(f"| {c} | {v:.4f} |" for c, v in top[:10])
                ),
            )
            bad = [f"PSI {scores[c]:.3f} on {c}" for c in over[:5]] + (
                [f"and {len(over) - 5} more columns"] if len(over) > 5 else []
            )
        out.append(
            _result(asset, "psi", bad, md, sev, monitoring.psi_threshold, len(refs) >= monitoring.min_history)
        )
        meta[PROFILES] = dg.MetadataValue.json(profiles)
    if label_rate is not None:
        change = relative_change(label_rate, [h.get("label_rate") for h in history]) if enough else None
        md = {
            **base,
            "label_rate": label_rate,
            "label_rate_change": round(change, 4) if change is not None else "n/a",
        }
        bad = (
            [f"label rate {label_rate:.4f} is {change:+.0%} against the trailing mean"]
            if change is not None and abs(change) > monitoring.label_rate_tolerance
            else []
        )
        out.append(_result(asset, "label_rate", bad, md, sev, monitoring.label_rate_tolerance, enough))
        meta["label_rate"] = label_rate
    return out, meta


def _result(asset, check, bad, md, severity, threshold, enough) -> dg.AssetCheckResult:
    md = {**md, "threshold": threshold}
    if not enough:
        md["note"] = "not enough trailing days to compare: passes"
    return dg.AssetCheckResult(
        check_name=f"{asset}_{check}",
        asset_key=asset,
        passed=not bad,
        severity=severity,
        description="; ".join(bad) if bad else None,
        metadata=md,
    )
