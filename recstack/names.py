"""Every name that more than one module uses: registered models, aliases, tags, Milvus aliases,
jobs and the asset keys named outside the module that defines them.

A literal copy of one of these strings anywhere else in the product fails ``tests/test_names.py``.
"""

from __future__ import annotations

# Registered models (MLflow), one per family.
ALS_MODEL = "recstack-als"
ITEM2VEC_MODEL = "recstack-item2vec"
TWO_TOWER_MODEL = "recstack-two-tower"
ENTITY_MODEL = "recstack-entity-vectors"
CONVERSION_MODEL = "recstack-conversion"
MODELS = (ALS_MODEL, ITEM2VEC_MODEL, TWO_TOWER_MODEL, ENTITY_MODEL, CONVERSION_MODEL)

# Registry aliases: a new version is the challenger; the policy (or a person) moves champion.
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"

# Model-version tags written by promotion.
TAG_PROMOTION = "recstack.promotion"
TAG_PROMOTION_REASON = "recstack.promotion.reason"
TAG_PROMOTION_BY = "recstack.promotion.by"
TAG_PROMOTION_AT = "recstack.promotion.at"

# Milvus aliases the service and the publish assets share.
MILVUS_ENTITIES = "recstack_entities"
MILVUS_ALS_ITEMS = "recstack_als_items"
MILVUS_ALS_USERS = "recstack_als_users"
MILVUS_KB = "recstack_kb"

# Jobs.
RECOMMENDATION_JOB = "recommendation_slice"
WAREHOUSE_JOB = "feature_warehouse_daily"
DICTIONARY_JOB = "feature_dictionary_load"
REBUILD_ALS_JOB = "rebuild_als_serving"
ENTITY_UPDATES_JOB = "entity_updates"
ONLINE_METRICS_JOB = "online_metrics_daily"
CONVERSION_JOB = "conversion_daily"
RESCORE_OPPORTUNITIES_JOB = "rescore_opportunities"
FRESHNESS_JOB = "freshness_checks"

# Asset keys named outside their defining module (deps, job selections, the service's store
# reads, the sensor's run config). An asset's own module names it by its function.
INTERACTIONS = "interactions"
ENTITY_PROFILES = "entity_profiles"
KB_DOCUMENTS = "kb_documents"
FEATURE_DICTIONARY = "feature_dictionary"
ALS_USER_VECTORS = "als_user_vectors"
ALS_ITEM_VECTORS = "als_item_vectors"
ITEM2VEC_ITEM_VECTORS = "item2vec_item_vectors"
ITEM2VEC_USER_VECTORS = "item2vec_user_vectors"
ENTITY_VECTORS = "entity_vectors"
KB_DOC_VECTORS = "kb_doc_vectors"
KB_SEARCH_FUSION = "kb_search_fusion"
FAISS_INDEX_ALS_USERS = "faiss_index_als_users"
FAISS_INDEX_ALS_ITEMS = "faiss_index_als_items"
FAISS_INDEX_ITEM2VEC_ITEMS = "faiss_index_item2vec_items"
FAISS_INDEX_ENTITIES = "faiss_index_entities"
MILVUS_COLLECTION_ENTITIES = "milvus_collection_entities"
MILVUS_COLLECTION_ALS_ITEMS = "milvus_collection_als_items"
MILVUS_COLLECTION_ALS_USERS = "milvus_collection_als_users"
MILVUS_COLLECTION_KB = "milvus_collection_kb"
ITEM_AUDIENCES = "item_audiences"
ENTITY_PROFILE_CHANGES = "entity_profile_changes"
LOOKALIKE_AUDIENCES = "lookalike_audiences"
ALS_PROMOTION = "als_promotion"
ITEM2VEC_PROMOTION = "item2vec_promotion"
RECOMMENDATION_FUSION = "recommendation_fusion"
RECOMMENDER_INPUTS = "recommender_inputs"
USER_RECOMMENDATIONS = "user_recommendations"
LOOKALIKE_EVALUATION = "lookalike_evaluation"
ONLINE_METRICS = "online_metrics"
OPPORTUNITY_FEATURES = "opportunity_features"
OPPORTUNITY_SNAPSHOT = "opportunity_snapshot"
CONVERSION_SAMPLES = "conversion_samples"
CONVERSION_MODEL_ASSET = "conversion_model"
CONVERSION_PROMOTION = "conversion_promotion"
OPPORTUNITY_SCORES = "opportunity_scores"
OPPORTUNITY_ASSIGNMENT = "opportunity_assignment"
# The CRM loop's daily assets (their own job: a day's labels mature horizon days later).
CONVERSION_ASSETS = (
    CONVERSION_SAMPLES,
    CONVERSION_MODEL_ASSET,
    CONVERSION_PROMOTION,
    OPPORTUNITY_SCORES,
    OPPORTUNITY_ASSIGNMENT,
)
