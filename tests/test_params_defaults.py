"""Each default is written once: the Dagster configs derive from the pure parameter types, and a
pipeline default that differs is a declared override with its reason."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

import dagster as dg
import pytest

import assets
from assets.common._shared import declared_overrides, default_drift, derived_fields, params_config

# Configs with no pure parameter type behind them: what the pipeline alone decides.
PIPELINE_ONLY = {
    "VectorsConfig": "which registered version to rebuild the vectors from (the sensor's run config)",
    "LookalikeEvaluationConfig": "the backtest's cut and campaign sizes",
    "LookalikeConfig": "the audience job's seeds and sizes",
    "SimilarEntitiesConfig": "how many neighbours to store",
    "IndexConfig": "the Faiss factory and recall measurement",
    "InteractionsConfig": "the interaction source (synthetic or a file)",
    "EntityProfilesConfig": "the profile source",
    "KbConfig": "the knowledge-base source",
    "DictionaryConfig": "the feature dictionary's path",
    "WindowConfig": "the window engine",
    "LayerConfig": "the DWD and MID engine",
    "OnlineMetricsConfig": "the days of served traffic read",
    "UserRecommendationsConfig": "the daily lists' length, blocklist and batch size",
    "SampleConfig": "which open opportunities are samples",
    "AssignmentConfig": "the sales staff's daily capacity",
    "EntityProfileChangesConfig": "where the day's profile changes come from",
}


def config_classes() -> dict[str, type]:
    """Every Dagster ``Config`` class defined in the ``assets`` package."""
    out = {}
    for m in pkgutil.walk_packages(assets.__path__, "assets."):
        mod = importlib.import_module(m.name)
        for v in vars(mod).values():
            if (
                isinstance(v, type)
                and issubclass(v, dg.Config)
                and v.__module__ == mod.__name__
                and v.model_fields
            ):  # a base of methods only is not a config
                out[v.__name__] = v
    return out


def test_every_config_is_derived_or_pipeline_only():
    classes = config_classes()
    loose = sorted(n for n, c in classes.items() if not derived_fields(c) and n not in PIPELINE_ONLY)
    assert loose == [], (
        f"derive these from their parameter type (params_config) or list them in PIPELINE_ONLY: {loose}"
    )
    assert set(PIPELINE_ONLY) <= set(classes), (
        f"stale PIPELINE_ONLY entries: {set(PIPELINE_ONLY) - set(classes)}"
    )


@pytest.mark.parametrize("name", sorted(n for n, c in config_classes().items() if derived_fields(c)))
def test_pipeline_defaults_are_the_pure_defaults(name):
    cls = config_classes()[name]
    assert default_drift(cls) == []
    assert all(reason.strip() for reason in declared_overrides(cls).values())


def test_the_model_families_are_derived():
    from assets.embeddings.als import AlsParams
    from assets.embeddings.entity_vectors import EntityVectorParams
    from assets.embeddings.item2vec import Item2VecParams, SessionSpec
    from assets.embeddings.two_tower import TwoTowerParams
    from assets.evaluation.offline import SplitSpec
    from assets.indexes.milvus_index import CollectionSpec
    from assets.tuning.protocol import TuningProtocol

    c = config_classes()
    got = {
        n: set(derived_fields(c[n]))
        for n in (
            "AlsConfig",
            "Item2VecConfig",
            "TwoTowerConfig",
            "EntityVectorConfig",
            "SessionConfig",
            "SplitConfig",
            "TuningBudget",
            "MilvusCollectionConfig",
        )
    }
    assert got == {
        "AlsConfig": {AlsParams},
        "Item2VecConfig": {Item2VecParams},
        "TwoTowerConfig": {TwoTowerParams},
        "EntityVectorConfig": {EntityVectorParams},
        "SessionConfig": {SessionSpec},
        "SplitConfig": {SplitSpec},
        "TuningBudget": {TuningProtocol},
        "MilvusCollectionConfig": {CollectionSpec},
    }


def test_config_builds_the_same_params_as_the_pure_defaults():
    from assets.embeddings.als import AlsParams
    from assets.embeddings.als_assets import AlsConfig
    from assets.embeddings.entity_assets import EntityVectorConfig
    from assets.embeddings.entity_vectors import EntityVectorParams
    from assets.embeddings.item2vec import Item2VecParams
    from assets.embeddings.item2vec_assets import Item2VecConfig
    from assets.embeddings.two_tower import TwoTowerParams
    from assets.embeddings.two_tower_assets import TwoTowerConfig
    from assets.evaluation._shared import SplitConfig
    from assets.evaluation.offline import SplitSpec

    assert AlsConfig(use_tuned=False).params() == AlsParams()
    assert Item2VecConfig(use_tuned=False).params() == Item2VecParams()
    assert TwoTowerConfig(use_tuned=False).params() == TwoTowerParams()
    assert EntityVectorConfig().params() == EntityVectorParams()
    assert SplitConfig(split="random", split_seed=3).split_spec() == SplitSpec(method="random", seed=3)
    tuned = {"best_params": {"rank": 64, "reg": 0.2}, "searched": ["rank", "reg"], "adopted": True}
    assert AlsConfig(rank=8).params(tuned) == AlsParams(rank=64, reg=0.2)
    assert AlsConfig(rank=8, use_tuned=False).params(tuned) == AlsParams(rank=8)


@dataclass(frozen=True)
class _Params:
    """Planted.

    Attributes
    ----------
    a : int
        The first.
    b : float
        The second.
    """

    a: int = 1
    b: float = 0.5


def test_the_check_catches_a_default_that_drifted():
    derived = params_config(_Params, "PlantedConfig", "planted")
    assert default_drift(derived) == []
    assert derived.model_fields["a"].description == "The first."

    class HandEdited(derived):
        a: int = 2  # a second default, not declared

    assert default_drift(HandEdited) == ["HandEdited.a = 2, but _Params.a = 1"]

    class Declared(derived):
        __overrides__ = {"a": "the pipeline trains on less data"}
        a: int = 2

    assert default_drift(Declared) == []
    overridden = params_config(_Params, "Overridden", "planted", overrides={"b": (0.7, "a reason")})
    assert default_drift(overridden) == [] and overridden().b == 0.7
    with pytest.raises(ValueError, match="needs its reason"):
        params_config(_Params, "NoReason", "planted", overrides={"b": (0.7, " ")})
    with pytest.raises(ValueError, match="not _Params fields"):
        params_config(_Params, "Typo", "planted", exclude=("c",))
