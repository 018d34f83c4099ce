"""Renderers of the knowledge-base benchmarks (the pretrained start, the fusion validation chose)
for :mod:`benchmarks.report`."""

from __future__ import annotations


def kb_pretrained(d: dict) -> list[str]:
    """One row per set and start: test MRR@10 of each stage (mean over seeds), the fusions and
    second stages chosen on validation, and the lift of each stage over BM25."""
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
                "–",
                "–",
            ]
        )
        for init in ("scratch", "pretrained"):
            if init not in r:
                continue
            runs = r[init]["runs"]
            vec, fused = r[init]["vector_mrr@10_mean"], r[init]["fused_mrr@10_mean"]
            reranked = r[init].get("reranked_mrr@10_mean")
            rows.append(
                [
                    name,
                    f"{init} ({len(runs)} seed{'s' if len(runs) > 1 else ''}, "
                    f"{max(x['epochs'] for x in runs)} epochs at most)",
                    f"{bm25:.4f}",
                    f"{vec:.4f} (×{vec / bm25:.3f})",
                    f"{fused:.4f} (×{fused / bm25:.3f})",
                    (
                        f"{reranked:.4f} (×{reranked / bm25:.3f})"
                        + (
                            f", {n} seed"
                            if (n := r[init].get("reranked_seeds", len(runs))) < len(runs)
                            else ""
                        )
                    )
                    if reranked is not None
                    else "not run",
                    "; ".join(sorted({x["fusion"] for x in runs})),
                    "; ".join(sorted({x.get("rerank", "–") for x in runs})),
                ]
            )
    return table(
        [
            "set",
            "encoder",
            "BM25 MRR@10",
            "vector MRR@10 (× BM25)",
            "fused MRR@10 (× BM25)",
            "fused + reranked MRR@10 (× BM25)",
            "fusion chosen on validation",
            "second stage chosen on validation",
        ],
        rows,
    )


def entity_text(d: dict) -> list[str]:
    """Same-label precision@10 per labelled set: TF-IDF, each word weighting (mean over seeds),
    the zero-shot MiniLM; and the weighting chosen on the choosing set."""
    from benchmarks.report import table

    res = d["results"]
    variants = ("mean", "idf", "sif", "sif_pc1", "idf_lsa128")
    rows = [
        [
            name,
            r["texts"],
            r["labels"],
            f"{r['tfidf']:.4f}",
            *[f"{r[v]['mean']:.4f}" if v in r else "–" for v in variants],
            f"{r['minilm_zero_shot']:.4f}",
        ]
        for name, r in res.items()
        if isinstance(r, dict)
    ]
    out = table(
        ["set", "texts", "labels", "TF-IDF", *[f"word vectors, {v}" for v in variants], "MiniLM zero-shot"],
        rows,
    )
    return [*out, "", f"Variant chosen on the choosing set: **{res.get('chosen_weighting', '–')}**."]
