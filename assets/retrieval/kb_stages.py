"""What ``kb_search_fusion`` chose for the hybrid KB search, as one stored object.

The fusion of the lexical and vector stages, the second stage (a LambdaRank model, a second
encoder trained on hard negatives, both, or none) and the validation curves behind each choice.
Saved as ``stages.json`` (LightGBM's text model inside) and, where the second stage has one, the
second encoder's folder (:class:`~assets.retrieval.kb_second_encoder.SecondEncoder`): loading
unpickles nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from assets.retrieval.kb_fusion import KbFusionParams
from assets.retrieval.kb_rerank import KbReranker


@dataclass
class KbStages:
    """The chosen fusion and second stage of hybrid KB search, with their validation curves."""

    fusion: KbFusionParams = KbFusionParams()
    curve: list[dict] = field(default_factory=list)
    rerank_curve: list[dict] = field(default_factory=list)
    reranker: KbReranker | None = None

    @property
    def label(self) -> str:
        """The fusion's label (e.g. ``weighted bm25 w=0.3 depth=20``)."""
        return self.fusion.label()

    @property
    def rerank_label(self) -> str:
        """The chosen second stage's label (``first stage``: none)."""
        return next((r["label"] for r in self.rerank_curve if r["chosen"]), "first stage")

    def apply(self, index):
        """``index`` (a :class:`~assets.retrieval.kb_search.HybridKbIndex`) fusing and reranking
        as chosen."""
        return index.with_fusion(self.fusion).with_reranker(self.reranker)

    def with_docs(self, docs) -> KbStages:
        """The same choice with the second encoder's vectors over ``docs`` (the served entries)."""
        r = self.reranker
        if r is None or r.second is None:
            return self
        return replace(self, reranker=KbReranker(r.booster, r.params, r.second.with_docs(docs)))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "fusion": asdict(self.fusion),
            "curve": self.curve,
            "rerank_curve": self.rerank_curve,
            "rerank": self.reranker.to_dict() if self.reranker is not None else None,
        }
        (path / "stages.json").write_text(json.dumps(meta))
        if self.reranker is not None and self.reranker.second is not None:
            self.reranker.second.save(path / "second_encoder")

    @classmethod
    def load(cls, path: str | Path) -> KbStages:
        from assets.retrieval.kb_second_encoder import SecondEncoder

        path = Path(path)
        meta = json.loads((path / "stages.json").read_text())
        second = SecondEncoder.load(path / "second_encoder") if (path / "second_encoder").exists() else None
        reranker = KbReranker.from_dict(meta["rerank"], second) if meta.get("rerank") else None
        return cls(KbFusionParams.from_dict(meta["fusion"]), meta["curve"], meta["rerank_curve"], reranker)
