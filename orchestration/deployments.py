"""Resource sets per deployment, chosen in one place.

``local`` runs everything in-process or on files under ``RECSTACK_HOME``; ``prod`` points the
same assets at real services through environment variables (read at run time, so the code
location loads without them and without connecting anywhere).
"""

from __future__ import annotations

import dagster as dg

from recstack import settings
from recstack.settings import home
from resources.event_log import EventLogResource
from resources.faiss_resource import FaissResource
from resources.feature_store.resource import (
    CrmSourceResource,
    ExportResource,
    FeatureStoreResource,
    HBaseConfig,
    WarehouseLayoutResource,
    deployment_backend,
)
from resources.milvus import MilvusResource
from resources.mlflow_tracking import MlflowResource
from resources.monitoring import MonitoringResource
from resources.spark import SparkResource
from resources.storage import VersionedIOManager
from resources.validation import GreatExpectationsResource


def local_resources() -> dict:
    h = home()
    return {
        "io_manager": VersionedIOManager(root=str(h / "storage")),
        "spark": SparkResource(master="local[*]", driver_memory="4g"),
        "mlflow_tracking": MlflowResource(
            tracking_uri=f"sqlite:///{h / 'mlflow' / 'mlflow.db'}",
            artifact_root=str(h / "mlflow" / "artifacts"),
        ),
        "gx": GreatExpectationsResource(),
        "faiss_cfg": FaissResource(use_gpu="auto"),
        "feature_store": FeatureStoreResource(backend=deployment_backend()),  # the file under home
        "crm": CrmSourceResource(),
        "warehouse_layout": WarehouseLayoutResource(),
        "exports": ExportResource(root=str(h / "exports")),
        "milvus": MilvusResource(uri=settings.milvus_uri()),  # Milvus Lite file unless set
        "event_log": EventLogResource(root=settings.event_log_root()),
        "monitoring": MonitoringResource(
            webhook_url=settings.alert_webhook_url(), dagster_ui_url=settings.dagster_ui_url()
        ),
    }


def prod_resources() -> dict:
    return {
        "io_manager": VersionedIOManager(
            root=dg.EnvVar("RECSTACK_STORAGE_ROOT")
        ),  # e.g. s3://bucket/recstack
        "spark": SparkResource(
            master=dg.EnvVar("RECSTACK_SPARK_MASTER"), driver_memory="8g", shuffle_partitions=200
        ),
        "mlflow_tracking": MlflowResource(
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"), ui_url=dg.EnvVar("RECSTACK_MLFLOW_UI_URL")
        ),
        "gx": GreatExpectationsResource(),
        "faiss_cfg": FaissResource(use_gpu="auto"),
        "feature_store": FeatureStoreResource(
            backend=HBaseConfig(host=dg.EnvVar("RECSTACK_HBASE_HOST"), table_prefix="recstack")
        ),
        "warehouse_layout": WarehouseLayoutResource(),  # the image's packaged layout
        "crm": CrmSourceResource(
            events_path=dg.EnvVar("RECSTACK_CRM_EVENTS_PATH"),
            opportunities_path=dg.EnvVar("RECSTACK_CRM_OPPORTUNITIES_PATH"),
        ),
        "exports": ExportResource(root=dg.EnvVar("RECSTACK_EXPORT_ROOT")),
        "milvus": MilvusResource(
            uri=dg.EnvVar("RECSTACK_MILVUS_URI"), token=dg.EnvVar("RECSTACK_MILVUS_TOKEN")
        ),
        "event_log": EventLogResource(root=dg.EnvVar("RECSTACK_EVENT_LOG_ROOT")),  # e.g. s3://…/events
        "monitoring": MonitoringResource(
            webhook_url=settings.alert_webhook_url(), dagster_ui_url=settings.dagster_ui_url()
        ),
    }


def resources_for(name: str) -> dict:
    return {"local": local_resources, "prod": prod_resources}[name]()


def executor_for(name: str):
    """In-process locally (one import of the stack, one Spark session); a pod per step in prod."""
    if name == "prod":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured({"max_concurrent": 8})
    return dg.in_process_executor
