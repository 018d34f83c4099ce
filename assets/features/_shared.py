"""What the feature warehouse's asset modules share: the daily partitions, the store with its
tables, the validated layout, and the blocking-check spec."""

from datetime import date, datetime

import dagster as dg

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
