"""Index assets, one per vector table (factories, so new embedding families plug in): Faiss
indexes for in-process recall, and Milvus collections published behind a serving alias."""

import dagster as dg
import pandas as pd
import pyarrow as pa

from assets.common._shared import params_config, params_of
from assets.common.plots import curve_markdown
from assets.embeddings.vectors import table_to_vectors
from assets.indexes import milvus_index
from assets.indexes.faiss_index import VectorIndex, measure_recall
from assets.indexes.milvus_index import CollectionSpec, scalar_fields
from recstack import names
from resources.faiss_resource import FaissResource
from resources.kubernetes import gpu_op_tags
from resources.milvus import MilvusResource
from resources.retries import EXTERNAL_RETRY, transient_only


class IndexConfig(dg.Config):
    """``index_type``: ``auto`` (from size, dimension and the memory budget) or a Faiss factory string
    (``Flat``, ``IVF1024,Flat``, ``IVF4096,SQ8``, ``HNSW32``); the search parameter is tuned to
    ``faiss_cfg.target_recall`` at ``recall_k`` on ``recall_sample`` queries."""

    index_type: str = "auto"
    recall_sample: int = 1000
    recall_k: int = 10


def faiss_index_asset(name: str, vectors_asset: str) -> dg.AssetsDefinition:
    """Build an ``@asset`` named ``name`` that indexes the vector table ``vectors_asset``."""

    @dg.asset(
        name=name,
        ins={"vectors": dg.AssetIn(vectors_asset)},
        kinds={"faiss"},
        op_tags=gpu_op_tags(),
        description=f"Faiss index over `{vectors_asset}` with recall measured against exact search.",
    )
    def _index(
        context: dg.AssetExecutionContext, config: IndexConfig, vectors: pa.Table, faiss_cfg: FaissResource
    ) -> dg.Output[VectorIndex]:
        ids, vecs, md = table_to_vectors(vectors)
        index = VectorIndex.build(
            ids,
            vecs,
            metric=md.get("metric", "ip"),
            index_type=config.index_type,
            nprobe=faiss_cfg.nprobe,
            use_gpu=faiss_cfg.use_gpu,
            target_recall=faiss_cfg.target_recall,
            recall_k=config.recall_k,
            tune_sample=config.recall_sample,
            memory_budget_mb=faiss_cfg.memory_budget_mb,
            threads=faiss_cfg.threads,
        )
        # The reporting half of the tuner's split: queries it never saw, self-matches removed.
        rec = measure_recall(index, ids, vecs, k=config.recall_k, sample=config.recall_sample)
        index.params.update(
            vectors_model_version=md.get("model_version", ""), vectors_model=md.get("model_name", ""), **rec
        )
        context.log.info(
            "%s: %s, recall@%d=%.3f",
            name,
            index.params["index_type"],
            config.recall_k,
            rec[f"recall@{config.recall_k}"],
        )
        return dg.Output(
            index,
            metadata={
                "index_type": index.params["index_type"],
                "vectors": int(len(ids)),
                "dim": int(vecs.shape[1]),
                f"recall@{config.recall_k}_vs_exact": rec[f"recall@{config.recall_k}"],
                # Tuned on rows held out of the index, checked on a second held-out sample:
                **{
                    k: round(float(index.params[k]), 4)
                    for k in ("heldout_recall", "tuned_recall_lower")
                    if index.params.get(k) is not None
                },
                "qps": round(rec["qps"], 1),
                "device": index.params.get("device", "cpu"),
                "build_seconds": index.params["build_seconds"],
                "vectors_model_version": md.get("model_version", ""),
                "plan": index.params["plan_reason"],
                "search_param": f"{index.params['search_param']}={index.params['search_value']}"
                if index.params["search_param"]
                else "exact",
                "target_recall": index.params["target_recall"],
                "tune_seconds": index.params["tune_seconds"],
                "index_mib": round(index.params["index_bytes"] / 2**20, 2),
                "recall_curve": dg.MetadataValue.json(
                    [[int(v), round(r, 4)] for v, r in index.params["tune_curve"]]
                ),
                **(
                    {
                        "recall_plot": dg.MetadataValue.md(
                            curve_markdown(
                                index.params["tune_curve"],
                                index.params["search_param"],
                                f"recall@{config.recall_k}",
                                index.params["target_recall"],
                                f"{name}: recall vs {index.params['search_param']}",
                            )
                        )
                    }
                    if index.params["tune_curve"]
                    else {}
                ),
            },
        )

    return _index


faiss_index_als_users = faiss_index_asset(names.FAISS_INDEX_ALS_USERS, names.ALS_USER_VECTORS)
faiss_index_als_items = faiss_index_asset(names.FAISS_INDEX_ALS_ITEMS, names.ALS_ITEM_VECTORS)
faiss_index_item2vec_items = faiss_index_asset(names.FAISS_INDEX_ITEM2VEC_ITEMS, names.ITEM2VEC_ITEM_VECTORS)
faiss_index_entities = faiss_index_asset(names.FAISS_INDEX_ENTITIES, names.ENTITY_VECTORS)


MilvusCollectionConfig = params_config(
    CollectionSpec,
    "MilvusCollectionConfig",
    "The collection's index (:class:`~assets.indexes.milvus_index.CollectionSpec`: ``IVF_SQ8`` as in the "
    "lookalike practice, ``nlist`` about 4·√n and ``nprobe`` tuned to ``target_recall`` unless set; "
    "``IVF_FLAT``, ``HNSW`` and ``FLAT`` selectable) and the "
    "verification a new version must pass.",
    only=("index_type", "nlist", "nprobe", "target_recall", "hnsw_m", "ef_construction", "ef"),
    extra={
        "recall_sample": (int, 200, "stored vectors whose recall@10 against exact search is verified"),
        "min_recall": (float, 0.8, "the verified recall a new version needs before the alias moves"),
    },
)


def publish_vectors(
    context,
    config: MilvusCollectionConfig,
    milvus: MilvusResource,
    alias: str,
    vectors: pa.Table,
    scalars: pd.DataFrame | None = None,
) -> dg.Output[dict]:
    """Publish a vector table as the next version behind ``alias`` (the body of every Milvus asset)."""
    ids, vecs, md = table_to_vectors(vectors)
    metric = "IP" if md.get("metric", "ip") == "ip" else "L2"
    spec = params_of(config, CollectionSpec, alias=alias, dim=int(vecs.shape[1]), metric=metric)
    info = milvus_index.publish(
        milvus.client(),
        spec,
        ids,
        vecs,
        scalar_fields(scalars, ids),
        recall_sample=config.recall_sample,
        min_recall=config.min_recall,
    )
    info.update(vectors_model=md.get("model_name", ""), vectors_model_version=md.get("model_version", ""))
    context.log.info("%s now serves %s (%d rows)", alias, info["collection"], info["rows"])
    return dg.Output(
        info,
        metadata={
            "alias": alias,
            "collection": info["collection"],
            "version": info["version"],
            "rows": info["rows"],
            "recall@10_vs_exact": round(info["recall@10"], 4),
            "index_type": config.index_type,
            "nlist": info["nlist"],
            "nprobe": info["nprobe"],
            "publish_seconds": info["publish_seconds"],
            "dropped_versions": dg.MetadataValue.json(info["dropped_versions"]),
            "vectors_model_version": info["vectors_model_version"],
        },
    )


def milvus_collection_asset(
    name: str, vectors_asset: str, alias: str, scalars_asset: str | None = None
) -> dg.AssetsDefinition:
    """An ``@asset`` publishing ``vectors_asset`` to Milvus behind ``alias`` (scalar fields from
    ``scalars_asset``, an entity frame, when given)."""
    desc = (
        f"Milvus collection behind alias `{alias}` over `{vectors_asset}`: "
        "versioned, verified, then switched."
    )
    if scalars_asset is None:

        @dg.asset(
            name=name,
            ins={"vectors": dg.AssetIn(vectors_asset)},
            kinds={"milvus"},
            description=desc,
            retry_policy=EXTERNAL_RETRY,
        )
        @transient_only
        def _plain(
            context: dg.AssetExecutionContext,
            config: MilvusCollectionConfig,
            milvus: MilvusResource,
            vectors: pa.Table,
        ):
            return publish_vectors(context, config, milvus, alias, vectors)

        return _plain

    @dg.asset(
        name=name,
        ins={"vectors": dg.AssetIn(vectors_asset), "scalars": dg.AssetIn(scalars_asset)},
        kinds={"milvus"},
        description=desc,
        retry_policy=EXTERNAL_RETRY,
    )
    @transient_only
    def _with_scalars(
        context: dg.AssetExecutionContext,
        config: MilvusCollectionConfig,
        milvus: MilvusResource,
        vectors: pa.Table,
        scalars: pd.DataFrame,
    ):
        return publish_vectors(context, config, milvus, alias, vectors, scalars)

    return _with_scalars


milvus_collection_entities = milvus_collection_asset(
    names.MILVUS_COLLECTION_ENTITIES,
    names.ENTITY_VECTORS,
    names.MILVUS_ENTITIES,
    scalars_asset=names.ENTITY_PROFILES,
)
milvus_collection_als_items = milvus_collection_asset(
    names.MILVUS_COLLECTION_ALS_ITEMS, names.ALS_ITEM_VECTORS, names.MILVUS_ALS_ITEMS
)
milvus_collection_als_users = milvus_collection_asset(
    names.MILVUS_COLLECTION_ALS_USERS, names.ALS_USER_VECTORS, names.MILVUS_ALS_USERS
)
milvus_collection_kb = milvus_collection_asset(
    names.MILVUS_COLLECTION_KB, names.KB_DOC_VECTORS, names.MILVUS_KB
)
