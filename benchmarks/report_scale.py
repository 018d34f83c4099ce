"""Renderers of the scale benchmarks (ALS as the data grows, the service by backend and size) for
:mod:`benchmarks.report`."""

from __future__ import annotations


def _table(header: list[str], rows: list[list]) -> list[str]:
    from benchmarks.report import table

    return table(header, rows)


def _ratios_and_targets(d: dict) -> list[str]:
    """The ratio table and the target table every scale benchmark ends with."""
    out = ["", "| ratio | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in d["ratios"].items())]
    out += ["", "| target | met |", "|---|---|"]
    return out + [f"| {k} | {'yes' if v else 'no'} |" for k, v in d["targets"].items()]


def scale_als(d: dict) -> list[str]:
    w = d["workload"]
    out = [
        f"{w['engine']}; rank {w['rank']}, {w['iterations']} iterations, {w['pairs_per_user']} pairs per "
        f"user, {w['items']:,} items; {w['evaluation']}. Each run in a fresh process.",
        "",
    ]
    rows = [
        [
            r["path"],
            f"{r['pairs']:,}",
            r["seconds"],
            r["seconds_per_million_pairs"],
            r["driver_peak_rss_mib"],
            r["jvm_peak_rss_mib"],
            r["ndcg@10"],
            r["popularity_ndcg@10"],
        ]
        for r in d["runs"]
    ]
    out += _table(
        [
            "path",
            "pairs",
            "seconds",
            "s per 1M pairs",
            "driver peak MiB",
            "JVM peak MiB",
            "NDCG@10",
            "popularity",
        ],
        rows,
    )
    out += _ratios_and_targets(d)
    out += ["", f"Largest size completed: {d['largest_completed']}."]
    return out


def serve_load(d: dict) -> list[str]:
    w = d["workload"]
    out = [
        f"{w['clients']} connections for {w['seconds']} s per endpoint, {w['server']}; "
        + "; ".join(f"`{k}`: {v}" for k, v in w["endpoints"].items())
        + ".",
        "",
    ]
    if d.get("updated"):
        out += ["Measured again since: " + "; ".join(f"`{e}` {v}" for e, v in d["updated"].items()) + ".", ""]
    rows = []
    for r in d["runs"]:
        for e in ("similar", "lookalike", "kb", "kb_rerank", "recommend", "feedback"):
            if e not in r:
                continue
            x = r[e]
            rss = (
                r.get("worker_rss_mib_recommend_feedback", r["worker_rss_mib"])
                if e
                in (
                    "recommend",
                    "feedback",
                )
                else r["worker_rss_mib"]
            )
            rows.append(
                [
                    r["backend"],
                    f"{r['vectors']:,}",
                    e,
                    x["throughput_rps"],
                    x["p50_ms"],
                    x["p99_ms"],
                    x["errors"],
                    " / ".join(str(v) for v in rss),
                ]
            )
        b = r["in_process_baseline"]
        base = f"in-process ({b['index_type']})"
        rows.append(
            [base, f"{r['vectors']:,}", "similar", b["throughput_rps"], b["p50_ms"], b["p99_ms"], "–", "–"]
        )
    out += _table(
        ["backend", "vectors", "endpoint", "req/s", "p50 ms", "p99 ms", "errors", "worker RSS MiB"], rows
    )
    out += _ratios_and_targets(d)
    return out


def scale_dwd(d: dict) -> list[str]:
    w = d["workload"]
    out = [
        f"{w['engine']}; {w['event_mix']}, {w['redelivered']} redelivered; store writes "
        f"{w['store_writes']}. Each run in a fresh process.",
        "",
    ]
    rows = [
        [
            r["path"],
            f"{r['events']:,}",
            f"{r['cells']:,}",
            r["seconds"],
            r["seconds_per_million_events"],
            r["driver_peak_rss_mib"],
            r["jvm_peak_rss_mib"],
        ]
        for r in d["runs"]
    ]
    out += _table(
        ["path", "events", "cells", "seconds", "s per 1M events", "driver peak MiB", "JVM peak MiB"], rows
    )
    out += _ratios_and_targets(d)
    return out


def fusion_recall(d: dict) -> list[str]:
    out = [d.get("protocol", ""), ""]
    rows = []
    for name, r in d["results"].items():
        t = r["test"]
        c = r["chosen"]
        chosen = (
            f"{c['method']}"
            if c["method"] in ("als", "item2vec", "popularity")
            else f"{c['method']} ALS {c['als_weight']}, popularity {c['popularity_weight']}"
        ) + (f", half-life {c['trending_half_life_days']:g} d" if c["trending_half_life_days"] else "")
        rows.append(
            [
                name,
                f"{r['test_users']} ({r['cold_test_users']} cold)",
                chosen,
                *(t[m]["ndcg@10"] for m in ("fused", "als", "item2vec", "popularity")),
                *(t[m]["recall@10"] for m in ("fused", "als")),
                r["fused_over_best_single"]["ndcg@10"],
                "yes" if r["target_fused_beats_best_single"] else "no",
            ]
        )
    out += _table(
        [
            "set",
            "test users",
            "chosen on validation",
            "fused NDCG@10",
            "ALS",
            "item2vec",
            "popularity",
            "fused recall@10",
            "ALS recall@10",
            "fused / best single (NDCG)",
            "beats both sources",
        ],
        rows,
    )
    return out


def online_features(d: dict) -> list[str]:
    rows = []
    for r in d["runs"]:
        for case in ("healthz", "one_entity", "batch_of_10"):
            x = r[case]
            rows.append(
                [
                    f"{r['entities']:,}",
                    case,
                    f"{x['throughput_rps']:,.0f}",
                    f"{x['p50_ms']:.1f}",
                    f"{x['p99_ms']:.1f}",
                    f"{x['p99_vs_healthz']:.2f}×" if "p99_vs_healthz" in x else "–",
                    x["errors"],
                ]
            )
    out = [
        f"{d['clients']} concurrent clients, {d['server']}, the embedded store "
        f"({d['runs'][0]['features']} window features per entity, today's events for a tenth).",
        "",
        *_table(["entities", "request", "req/s", "p50 ms", "p99 ms", "p99 / healthz", "errors"], rows),
    ]
    if d.get("growth"):
        g = d["growth"]
        out += [
            "",
            f"From the smallest to the largest store ({g['entities_growth']:g}× the entities), p99 grew "
            f"{g['one_entity_p99_growth']}× for one entity and {g['batch_of_10_p99_growth']}× for a batch "
            "of 10.",
        ]
    return out
