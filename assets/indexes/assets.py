"""Faiss index assets, one per vector table (a factory, so new embedding families plug in)."""


import dagster as dg
import pyarrow as pa

from assets.embeddings.vectors import table_to_vectors
from assets.indexes.faiss_index import VectorIndex, measure_recall
from resources.faiss_resource import FaissResource
from resources.kubernetes import gpu_op_tags


class IndexConfig(dg.Config):
    """``index_type``: ``auto`` (from size, dimension and the memory budget) or a Faiss factory string
    (``Flat``, ``IVF1024,Flat``, ``IVF4096,SQ8``, ``HNSW32``); the search parameter is tuned to
    ``faiss_cfg.target_recall`` at ``recall_k`` on ``recall_sample`` queries."""

    index_type: str = "auto"
    recall_sample: int = 1000
    recall_k: int = 10


def faiss_index_asset(name: str, vectors_asset: str) -> dg.AssetsDefinition:
    """Build an ``@asset`` named ``name`` that indexes the vector table ``vectors_asset``."""

    @dg.asset(name=name, ins={"vectors": dg.AssetIn(vectors_asset)}, kinds={"faiss"},
              op_tags=gpu_op_tags(), description=f"Faiss index over `{vectors_asset}` with recall measured against exact search.")
    def _index(context: dg.AssetExecutionContext, config: IndexConfig, vectors: pa.Table, faiss_cfg: FaissResource) -> dg.Output[VectorIndex]:
        ids, vecs, md = table_to_vectors(vectors)
        index = VectorIndex.build(ids, vecs, metric=md.get("metric", "ip"), index_type=config.index_type,
                                  nprobe=faiss_cfg.nprobe, use_gpu=faiss_cfg.use_gpu, target_recall=faiss_cfg.target_recall,
                                  recall_k=config.recall_k, tune_sample=config.recall_sample,
                                  memory_budget_mb=faiss_cfg.memory_budget_mb, threads=faiss_cfg.threads)
        rec = measure_recall(index, vecs, k=config.recall_k, sample=config.recall_sample)
        index.params.update(vectors_model_version=md.get("model_version", ""), vectors_model=md.get("model_name", ""), **rec)
        context.log.info("%s: %s, recall@%d=%.3f", name, index.params["index_type"], config.recall_k, rec[f"recall@{config.recall_k}"])
        return dg.Output(index, metadata={
            "index_type": index.params["index_type"], "vectors": int(len(ids)), "dim": int(vecs.shape[1]),
            f"recall@{config.recall_k}_vs_exact": rec[f"recall@{config.recall_k}"], "qps": round(rec["qps"], 1),
            "device": index.params.get("device", "cpu"), "build_seconds": index.params["build_seconds"],
            "vectors_model_version": md.get("model_version", ""), "plan": index.params["plan_reason"],
            "search_param": f"{index.params['search_param']}={index.params['search_value']}" if index.params["search_param"] else "exact",
            "target_recall": index.params["target_recall"], "tune_seconds": index.params["tune_seconds"],
            "index_mib": round(index.params["index_bytes"] / 2**20, 2),
            "recall_curve": dg.MetadataValue.json([[int(v), round(r, 4)] for v, r in index.params["tune_curve"]]),
        })

    return _index


faiss_index_als_users = faiss_index_asset("faiss_index_als_users", "als_user_vectors")
faiss_index_als_items = faiss_index_asset("faiss_index_als_items", "als_item_vectors")
faiss_index_item2vec_items = faiss_index_asset("faiss_index_item2vec_items", "item2vec_item_vectors")
faiss_index_entities = faiss_index_asset("faiss_index_entities", "entity_vectors")
