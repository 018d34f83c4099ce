"""Renderers of the knowledge-base benchmarks (the pretrained start, the fusion validation chose)
for :mod:`benchmarks.report`."""

from __future__ import annotations


def kb_pretrained(d: dict) -> list[str]:
    """One row per set and start: test MRR@10 of each stage (mean over seeds), the fusions chosen
    on validation, and the lift of each stage over BM25."""
    from benchmarks.report import table

    rows = []
    for name, r in d["results"].items():
        bm25 = r["bm25"]["mrr@10"]
        rows.append(
            [
                name,
                "zero-shot MiniLM (no training)",
                "–",
                f"{r['zero_shot_pretrained']['mrr@10']:.4f}",
                "–",
                "–",
            ]
        )
        for init in ("scratch", "pretrained"):
            if init not in r:
                continue
            runs = r[init]["runs"]
            vec, fused = r[init]["vector_mrr@10_mean"], r[init]["fused_mrr@10_mean"]
            rows.append(
                [
                    name,
                    f"{init} ({len(runs)} seed{'s' if len(runs) > 1 else ''}, "
                    f"{max(x['epochs'] for x in runs)} epochs at most)",
                    f"{bm25:.4f}",
                    f"{vec:.4f} (×{vec / bm25:.3f})",
                    f"{fused:.4f} (×{fused / bm25:.3f})",
                    "; ".join(sorted({x["fusion"] for x in runs})),
                ]
            )
    return table(
        [
            "set",
            "encoder",
            "BM25 MRR@10",
            "vector MRR@10 (× BM25)",
            "fused MRR@10 (× BM25)",
            "fusion chosen on validation",
        ],
        rows,
    )
