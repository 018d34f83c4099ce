"""What a model takes from its tuning asset's output: the adopted parameters, and where they came from.

Below every stage, so that the model assets (``assets/embeddings``) read the output of
``assets/evaluation``'s tuning assets without importing that stage.
"""

from __future__ import annotations


def adopted_fields(tuned: dict | None) -> dict:
    """The searched parameters of a tuning output to train with: ``{}`` when there is no output or
    its winner was not adopted (confirmation kept the defaults)."""
    if not tuned or not tuned.get("best_params") or not tuned.get("adopted", False):
        return {}
    return {k: tuned["best_params"][k] for k in tuned.get("searched", tuned["best_params"])}


def params_source(tuning_asset: str, use_tuned: bool, tuned: dict | None) -> str:
    """A model's ``params_from`` metadata: the tuning asset, or why its config values were used."""
    if not use_tuned:
        return "config (use_tuned off)"
    if adopted_fields(tuned):
        return tuning_asset
    return f"config ({tuning_asset} kept the defaults)" if tuned else "config"
