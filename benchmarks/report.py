"""``docs/benchmarks.md``, generated from ``benchmarks/results/*.json``: each figure has one source.

    python -m benchmarks.report           # rewrite docs/benchmarks.md (make docs; make bench ends with it)
    python -m benchmarks.report --check   # exit 1 if docs/benchmarks.md differs from the results

Every results file gets a section: a table per benchmark that has a renderer below, else a flat
table of its numbers. The page is never edited by hand (``tests/test_docs.py`` checks it matches).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks import report_kb, report_scale
from benchmarks.common import RESULTS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def _f(x, digits: int = 4) -> str:
    """A number as the tables show it (ints with separators, floats to ``digits`` places)."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return "–" if x is None else str(x)


def table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(c if isinstance(c, str) else _f(c) for c in r) + " |" for r in rows]


def _als_engines(d: dict) -> list[str]:
    rows = []
    for name, r in d["results"].items():
        for eng in ("spark", "implicit", "implicit_native"):
            if eng in r:
                e = r[eng]
                rows.append(
                    [
                        name,
                        f"{r['interactions']:,}",
                        eng,
                        _f(e["seconds_mean"], 2),
                        _f(e["ndcg@10_mean"]),
                        _f(e["recall@10_mean"]),
                    ]
                )
    return table(["data", "interactions", "engine", "seconds (mean)", "NDCG@10", "recall@10"], rows)


def _als_tuning(d: dict) -> list[str]:
    out = []
    for name, r in d["results"].items():
        t = r["test"]
        cols = list(t["ndcg@10"])
        out += [
            f"**{name}** ({r['pairs']:,} pairs, {r['trials']} trials, {r['tuning_seconds']} s; "
            f"confirmation {_f(r['confirmation_ndcg@10']['default'])} → "
            f"{_f(r['confirmation_ndcg@10']['tuned'])}: "
            f"{'adopted' if r['adopted'] else 'defaults kept'}). Test split:",
            "",
        ]
        out += table(["metric", *cols], [[m, *[t[m][c] for c in cols]] for m in t]) + [""]
    return out


def _tuning_family(metric_key: str, test_key: str) -> Callable[[dict], list[str]]:
    def render(d: dict) -> list[str]:
        rows = []
        for name, r in d["results"].items():
            v, c = r[metric_key], r["confirmation_" + metric_key.split("_", 1)[1]]
            test = {k: (x["mrr@10"] if isinstance(x, dict) else x) for k, x in r[test_key].items()}
            rows.append(
                [
                    name,
                    r["trials"],
                    _f(v["default"]),
                    _f(v["tuned"]),
                    _f(c["default"]),
                    _f(c["tuned"]),
                    "adopted" if r["adopted"] else "kept",
                    _f(test["default"]),
                    _f(test["search_winner"]),
                    _f(test["adopted"]),
                ]
            )
        return table(
            [
                "data",
                "trials",
                "validation: default",
                "tuned",
                "confirmation: default",
                "tuned",
                "verdict",
                "test: default",
                "search winner",
                "adopted",
            ],
            rows,
        )

    return render


def _faiss(d: dict) -> list[str]:
    w, t, b, e = d["workload"], d["tuned"], d["baseline"], d["exact"]
    out = [
        f"{w['users']:,} × {w['dim']}-d vectors ({w['matrix_mib']} MiB), {w['queries']:,} queries, "
        f"top-{w['k']}.",
        "",
    ]
    return (
        out
        + table(
            ["path", "index", "build + tune s", "search s", "total s", f"recall@{w['k']}"],
            [
                ["exact (extrapolated)", "–", "–", e["search_seconds_extrapolated"], "", 1.0],
                [
                    "tuned (`auto`)",
                    f"{t['index_type']}, nprobe {t['nprobe']}",
                    t["build_and_tune_seconds"],
                    t["search_seconds"],
                    t["total_seconds"],
                    t[f"recall@{w['k']}"],
                ],
                [
                    "plain Faiss",
                    f"{b['index_type']}, nprobe {b['nprobe']}",
                    b["build_seconds"],
                    b["search_seconds"],
                    b["total_seconds"],
                    b[f"recall@{w['k']}"],
                ],
            ],
        )
        + ["", f"Tuned time vs the plain baseline: ×{d['ratios']['tuned_time_vs_baseline']}."]
    )


def _faq(d: dict) -> list[str]:
    rows = []
    for name, r in d["results"].items():
        b, t = r["bm25"], r["two_tower"]
        rows.append(
            [
                name,
                r["test_queries"],
                _f(b["mrr@10"]),
                _f(t["mrr@10_mean"]),
                _f(t["mrr@10_min"]),
                f"×{r['mrr_ratio_two_tower_vs_bm25']:.3f}",
                r["every_seed_beats_bm25"],
            ]
        )
    return table(
        [
            "set",
            "test queries",
            "BM25 MRR@10",
            "two-tower MRR@10 (mean)",
            "min over seeds",
            "ratio",
            "every seed beats BM25",
        ],
        rows,
    )


def _kb_hybrid(d: dict) -> list[str]:
    modes = ("bm25", "bm25_pr", "vector", "hybrid_first_stage", "hybrid")
    rows = []
    for name, r in d["results"].items():
        m = {**r["metrics"]}
        m.setdefault("hybrid_first_stage", m["hybrid"])  # no second stage chosen: the fusion is all
        cells = [f"{m[k]['mrr@10']:.4f} / {m[k]['recall@5']:.3f}" if k in m else "–" for k in modes]
        rerank = r.get("reranker")
        rows.append(
            [
                name,
                r["test_queries"],
                *cells,
                r.get("fusion", "–"),
                f"lambdarank depth={rerank['depth']}" if rerank else "none (validation)",
                "yes" if r.get("hybrid_above_best_single") else "no",
            ]
        )
    return table(
        [
            "set",
            "queries",
            *[f"{k} MRR@10 / R@5" for k in modes],
            "fusion",
            "second stage",
            "hybrid > best single stage",
        ],
        rows,
    )


def _mutation(d: dict) -> list[str]:
    rows = [
        [
            f"`{m}`",
            s["mutants"] - s["not_run"],
            s["killed"],
            s["survived"],
            f"{100 * s['kill_rate']:.1f} %",
            s.get("equivalent", "–"),
            f"{100 * s.get('kill_rate_non_equivalent', s['kill_rate']):.1f} %",
            len(s.get("unreviewed_survivors", s["survivors"])),
        ]
        for m, s in d["modules"].items()
    ]
    return table(
        [
            "module",
            "mutants",
            "killed",
            "survived",
            "kill rate",
            "reviewed equivalent",
            "kill rate of the others",
            "not yet reviewed",
        ],
        rows,
    ) + ["", f"mutmut, {d['seconds']} s."]


def _topk(d: dict) -> list[str]:
    w = d["workload"]
    out = [
        f"{w['users']:,} users × {w['items']:,} items, rank {w['rank']}, k={w['k']}, {w['seen_pairs']:,} "
        f"seen pairs excluded.",
        "",
    ]
    return out + table(
        ["path", "seconds", "speed-up", "same ids"],
        [
            ["per-user loop (baseline)", d["per_user_loop_seconds"], "1×", ""],
            [
                "batched `topk`",
                d["batched_topk_seconds"],
                f"{d['speedup']}×",
                f"{100 * d['identical_ids_fraction']:.0f} %",
            ],
        ],
    )


def _window(d: dict) -> list[str]:
    w, r = d["workload"], d["results"]
    out = [
        f"{w['entities']:,} entities × {w['features']} features × {w['lines']} lines × {w['days']} days "
        f"({w['derived_values']:,} derived values).",
        "",
    ]
    rows = [
        [
            k,
            v["seconds"],
            v.get("entities", ""),
            f"{v['derived_values_per_s']:,.0f}" if "derived_values_per_s" in v else "–",
            round(v["peak_rss_mib"]),
        ]
        for k, v in r.items()
        if k != "store"
    ]
    out += table(["engine", "seconds", "entities", "derived values/s", "peak RSS MiB"], rows)
    s = r["store"]
    return out + [
        "",
        f"Embedded store: {s['write_cells_per_s']:,.0f} cells/s written, {s['scan_cells_per_s']:,.0f} "
        f"cells/s scanned ({s['cells']:,} cells). Ratios: "
        + ", ".join(f"{k} ×{v:.2f}" for k, v in d["ratios"].items())
        + ".",
    ]


def _fresh_clone(d: dict) -> list[str]:
    what = {
        "install": "`make install` (venv, CPU torch, the pins)",
        "run": "`make run` (the whole graph)",
        "test": "`make test` (ruff, docs, system packages where missing, the suite)",
    }
    rows = []
    for name, s in d["steps"].items():
        note = ""
        if name == "run" and s.get("assets") is not None:
            verdict = "SUCCESS" if s["success"] else "FAILED"
            note = (
                f"{verdict}: {s['assets']} assets in {s['graph_seconds']} s, {s['error_lines']} ERROR lines"
            )
        if name == "test":
            note = ", ".join(f"{v} {k}" for k, v in s.get("counts", {}).items())
        rows.append([what.get(name, name), f"{s['seconds'] / 60:.1f} min", s["exit_code"], note])
    return [f"Commit `{d['commit']}`, cloned into a new folder, `PIP_NO_CACHE_DIR=1`.", ""] + table(
        ["step", "time", "exit", "result"], rows
    )


def _flat(d: dict, prefix: str = "") -> list[list]:
    rows = []
    for k, v in d.items():
        if isinstance(v, dict):
            rows += _flat(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            rows.append([f"{prefix}{k}", v])
    return rows


RENDERERS: dict[str, tuple[str, str, Callable[[dict], list[str]]]] = {
    "fresh_clone": ("Set-up from a fresh clone", "python -m benchmarks.fresh_clone", _fresh_clone),
    "topk": ("One top-k against the per-user loop", "python -m benchmarks.topk_kernels", _topk),
    "window_engine": (
        "Window features: kernel, table, Spark and a pandas baseline",
        "python -m benchmarks.window_engine",
        _window,
    ),
    "als_engines": (
        "ALS engines: Spark and the single-node engine",
        "python -m benchmarks.als_engines",
        _als_engines,
    ),
    "als_tuning": (
        "ALS tuned against its defaults and the baselines",
        "python -m benchmarks.als_tuning",
        _als_tuning,
    ),
    "item2vec_tuning": (
        "item2vec tuned against its defaults",
        "python -m benchmarks.item2vec_tuning",
        _tuning_family("validation_ndcg@10", "test_ndcg@10"),
    ),
    "two_tower_tuning": (
        "The two-tower tuned against its defaults",
        "python -m benchmarks.two_tower_tuning",
        _tuning_family("validation_mrr@10", "test"),
    ),
    "faq_retrieval": (
        "Two-tower against BM25 on public FAQ sets",
        "python -m benchmarks.faq_retrieval",
        _faq,
    ),
    "kb_hybrid": ("Hybrid knowledge-base search", "python -m benchmarks.kb_hybrid", _kb_hybrid),
    "kb_pretrained": (
        "Knowledge-base search from a pretrained start",
        "python -m benchmarks.kb_pretrained",
        report_kb.kb_pretrained,
    ),
    "entity_text": (
        "Entity text vectors on labelled real text",
        "python -m benchmarks.entity_text",
        report_kb.entity_text,
    ),
    "faiss_seed_scale": ("Faiss at seed scale", "python -m benchmarks.faiss_seed_scale", _faiss),
    "scale_als": ("ALS as the data grows", "python -m benchmarks.scale_als", report_scale.scale_als),
    "scale_dwd": ("DWD cells as the day grows", "python -m benchmarks.scale_dwd", report_scale.scale_dwd),
    "fusion_recall": (
        "Fused per-user lists against each source",
        "python -m benchmarks.fusion_recall",
        report_scale.fusion_recall,
    ),
    "serve_load": (
        "The recall service under load",
        "python -m benchmarks.serve_load",
        report_scale.serve_load,
    ),
    "online_features": (
        "Online feature reads under load",
        "python -m benchmarks.online_features",
        report_scale.online_features,
    ),
    "mutation": ("Mutation testing", "make mutation", _mutation),
}


def render(results: Path = RESULTS) -> str:
    """The benchmarks page for every ``results/*.json``."""
    files = {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))}
    order = [n for n in RENDERERS if n in files] + sorted(set(files) - set(RENDERERS))
    out = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.report` from `benchmarks/results/*.json`; do not edit by hand. "
        "Each "
        "benchmark is one command and measures RecStack against a baseline in the same run. What each one "
        "means, "
        "and what was not measured, is on the capability's page.",
        "",
    ]
    for name in order:
        d = files[name]
        title, command, fn = RENDERERS.get(
            name, (name, f"python -m benchmarks.{name}", lambda x: table(["figure", "value"], _flat(x)))
        )
        when = d.get("when", "")
        cpus = d.get("machine", {}).get("cpus")
        out += [
            f"## {title}",
            "",
            f"`{command}` → `benchmarks/results/{name}.json`"
            + (f" ({when[:10]}, {cpus} CPUs)" if when else "")
            + ".",
            "",
        ]
        out += fn(d) + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if the page differs from the results")
    args = ap.parse_args(argv)
    page = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            print(f"{PAGE} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(page)
    print(f"written {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
