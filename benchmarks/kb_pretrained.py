"""Knowledge-base search from a pretrained start: scratch vs pretrained, each alone and fused with
the lexical stage as validation chooses, on BANKING77 (all and a quarter of the training queries).

Per set and seed: the training queries are split by :func:`~assets.evaluation.faq.holdout` into
training pairs and validation queries; each encoder (``init`` scratch, the settings of
``benchmarks/faq_retrieval.py``; ``init`` pretrained, ``all-MiniLM-L6-v2`` from its registry
package, fine-tuned with the same InfoNCE loop) early-stops on the validation queries; the fusion
of BM25 × PageRank and the vector stage is chosen on the same validation queries
(:func:`~assets.retrieval.kb_fusion.choose_kb_fusion`), and so is the learned second stage
(:func:`~assets.retrieval.kb_rerank.choose_kb_rerank`, cross-validated over them); the test queries
are scored once, at the end. Reported: MRR@10 and recall@5 of BM25, each encoder's vector search,
the zero-shot pretrained encoder, the chosen fusion, and the fusion + rerank, with the validation
curves.

    python -m benchmarks.kb_pretrained [--sets banking77_quarter banking77] [--seeds 2] [--max-epochs N]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from benchmarks.common import RESULTS, write_result
from benchmarks.faq_retrieval import PARAMS, SHARED, train_on_holdout

PRETRAINED_PARAMS = {
    "init": "pretrained",
    "batch_size": 64,
    "max_epochs": 2,  # an epoch of the full set is ~16 minutes on 2 cores
    "patience": 1,
    "finetune_lr": 5e-5,
    "max_len": 32,
    "token_dropout": 0.0,
    "warmup_fraction": 0.1,
}
SETS = {"banking77": ("banking77", 1.0), "banking77_quarter": ("banking77", 0.25)}


def _metrics(positions, relevant) -> dict:
    import numpy as np

    from assets.retrieval.kb_fusion import reciprocal_ranks

    rr = reciprocal_ranks(positions, relevant)
    hit5 = (positions[:, :5] == np.asarray(relevant)[:, None]).any(1)
    return {"mrr@10": float(rr.mean()), "recall@5": float(hit5.mean())}


def run_one(
    set_name: str, init: str, seed: int, max_epochs: int | None, save_dir=None, second_epochs: int = 2
) -> dict:
    import numpy as np

    from assets.common.topk import topk
    from assets.embeddings.two_tower import TwoTowerParams
    from assets.evaluation.faq import choose_kb_stages, holdout, kb_stage_scores, load_banking77
    from assets.retrieval.kb_fusion import KbFusionParams, fuse_kb
    from assets.retrieval.kb_stages import KbStages
    from benchmarks.kb_hybrid import second_encoder_test

    folder, fraction = SETS[set_name]
    data = load_banking77(SHARED / folder, train_fraction=fraction)  # the same quarter for every seed
    docs, test, tok = data["docs"], data["test"], data["tokenizer"]
    train, val_docs, val_queries = holdout(data)
    kw = dict(PARAMS[folder], tokenizer=tok, val_fraction=0.0, seed=seed)
    if init == "pretrained":
        kw.update(PRETRAINED_PARAMS)
    if max_epochs:
        kw["max_epochs"] = max_epochs
    saved = Path(save_dir) / f"{set_name}-{init}-{seed}" if save_dir else None
    if saved is not None and (saved / "params.json").exists():  # a run killed later resumes here
        from assets.embeddings.two_tower import TwoTower

        model = TwoTower.load(saved)
        train_s = float(model.history.get("train_seconds", 0.0))
    else:
        t0 = time.perf_counter()
        model = train_on_holdout(train, val_docs, val_queries, TwoTowerParams(**kw))
        train_s = time.perf_counter() - t0
        if saved is not None:  # for a resumed run, and later stages, to reuse without retraining
            model.save(saved)
    t0 = time.perf_counter()
    from assets.retrieval.kb_second_encoder import KbSecondEncoderParams

    second_params = KbSecondEncoderParams(epochs=second_epochs)
    stages = choose_kb_stages(
        model.encode, val_docs, val_queries, tok, first=model, pairs=train, second_params=second_params
    )
    stages_s = time.perf_counter() - t0
    chosen, curve = stages["fusion"], stages["fusion_curve"]
    kept = KbStages(chosen, curve, stages["rerank_curve"], stages["reranker"]).with_docs(docs)
    lex, cos, rel, index = kb_stage_scores(model.encode, docs, test, tok)
    fused = fuse_kb(lex[chosen.lexical], cos, chosen)[0]
    qv = model.encode(test["query"].tolist())
    served = kept.apply(index)
    column = {int(d): i for i, d in enumerate(index.doc_ids)}
    ids = served.search(test["query"].tolist(), qv, k=10)[0]
    reranked = np.vectorize(lambda d: column.get(int(d), -1))(ids)
    out = {
        "init": init,
        "seed": seed,
        "train_seconds": round(train_s, 1),
        "epochs": model.history["epochs"],
        "val_mrr@10_by_epoch": model.history["val_mrr"],
        "params": kw,
        "bm25": _metrics(topk(lex["bm25"], 10, exclude=lex["bm25"] <= 0)[0], rel),
        "bm25_pr": _metrics(topk(lex["bm25_pr"], 10, exclude=lex["bm25_pr"] <= 0)[0], rel),
        "vector": _metrics(fuse_kb(lex["bm25"], cos, KbFusionParams())[0], rel),
        "fused": _metrics(fused, rel),
        "reranked": _metrics(reranked, rel),
        "fusion": chosen.label(),
        "rerank": kept.rerank_label,
        "validation_curve": curve,
        "rerank_validation_curve": stages["rerank_curve"],
        "second_stage_train_seconds": round(stages_s, 1),
        "second_encoder_epochs": second_epochs,
        **second_encoder_test(stages, served, docs, test, qv),
    }
    print(
        f"  {set_name} {init} seed {seed}: vector {out['vector']['mrr@10']:.4f}, fused "
        f"({out['fusion']}) {out['fused']['mrr@10']:.4f}, reranked ({out['rerank']}) "
        f"{out['reranked']['mrr@10']:.4f}, BM25×PR {out['bm25_pr']['mrr@10']:.4f} "
        f"({out['epochs']} epochs, {out['train_seconds']} s)",
        flush=True,
    )
    return out


def zero_shot(set_name: str) -> dict:
    """The packaged encoder before any fine-tuning, on the test queries."""
    from assets.embeddings.pretrained_text import load_pretrained
    from assets.embeddings.two_tower import TwoTower, TwoTowerParams
    from assets.evaluation.faq import evaluate_encoder, load_banking77

    folder, fraction = SETS[set_name]
    data = load_banking77(SHARED / folder, train_fraction=fraction)
    vocab, enc = load_pretrained("all-MiniLM-L6-v2")
    m = TwoTower(vocab, enc, TwoTowerParams(init="pretrained", max_len=32))
    return evaluate_encoder(m.encode, data["docs"], data["test"])


def bm25(set_name: str) -> dict:
    from assets.evaluation.faq import bm25_rank, load_banking77, retrieval_metrics

    folder, fraction = SETS[set_name]
    data = load_banking77(SHARED / folder, train_fraction=fraction)
    test = data["test"]
    return retrieval_metrics(
        bm25_rank(data["docs"], test["query"].tolist(), "char"), test["doc_id"].to_numpy()
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="+", default=["banking77_quarter", "banking77"], choices=sorted(SETS))
    ap.add_argument("--inits", nargs="+", default=["scratch", "pretrained"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="run seeds first-seed .. first-seed + seeds - 1; the results file's other seeds stay",
    )
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--second-epochs", type=int, default=2, help="epochs of the hard-negative second encoder")
    ap.add_argument(
        "--save-models",
        default=None,
        help="a folder to save each trained encoder in (and load it from, resuming)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    prev = RESULTS / "kb_pretrained.json"

    def stored() -> dict:  # read again before each write: another run may have written since
        return json.loads(prev.read_text())["results"] if prev.exists() else {}

    res = stored()
    for name in args.sets:
        if not (SHARED / SETS[name][0]).exists():
            print(f"  {name} skipped: {SHARED / SETS[name][0]} not found")
            continue
        base = {"bm25": bm25(name), "zero_shot_pretrained": zero_shot(name)}
        print(
            f"  {name}: BM25 {base['bm25']['mrr@10']:.4f}, "
            f"zero-shot MiniLM {base['zero_shot_pretrained']['mrr@10']:.4f}"
        )
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        for init in args.inits:
            runs = [
                run_one(name, init, s, args.max_epochs, args.save_models, args.second_epochs) for s in seeds
            ]
            res = stored()
            out = {**res.get(name, {}), **base}
            kept = [r for r in out.get(init, {}).get("runs", []) if r["seed"] not in seeds]
            runs = sorted(kept + runs, key=lambda r: r["seed"])
            out[init] = {"runs": runs}
            for stage in ("vector", "fused", "reranked", "bm25", "bm25_pr"):
                have = [r[stage]["mrr@10"] for r in runs if stage in r]  # older runs: no reranked
                out[init][f"{stage}_mrr@10_mean"] = statistics.mean(have) if have else None
                out[init][f"{stage}_seeds"] = len(have)
            res[name] = out
            write_result("kb_pretrained", {"results": res})
    path = write_result("kb_pretrained", {"results": res})
    print(f"written {path}")
    return res


if __name__ == "__main__":
    main()
