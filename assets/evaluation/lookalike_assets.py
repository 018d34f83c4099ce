"""Which lookalike strategy to use, decided on history: a time-split evaluation asset."""

import dagster as dg
import pandas as pd

from assets.common.plots import bars_markdown
from assets.embeddings.als import AlsParams, train_als
from assets.embeddings.factor_model import FactorModel
from assets.embeddings.vectors import l2_normalize
from assets.indexes.faiss_index import VectorIndex
from assets.retrieval.lookalike_eval import evaluate_strategies, time_split_targets
from recstack import names


class LookalikeEvaluationConfig(dg.Config):
    cut_quantile: float = 0.8  # T: this quantile of the interaction times
    n_targets: int = 20
    audience_size: int = 200
    k_per_seed: int = 50


def lookalike_backtest(
    interactions: pd.DataFrame,
    params: AlsParams,
    cut_quantile: float = 0.8,
    n_targets: int = 20,
    audience_size: int = 200,
    k_per_seed: int = 50,
) -> dict:
    """Split at T, train vectors on the interactions before T only (the single-node ALS engine,
    with the registered model's parameters), and score every strategy and the baseline."""
    t, before, truth = time_split_targets(interactions, cut_quantile, n_targets)
    if not truth:
        raise ValueError(
            "no target item has both seeds before T and new users after T: lower cut_quantile or n_targets"
        )
    m = train_als("implicit", before, params)
    users = VectorIndex.build(m.user_ids, l2_normalize(m.user_factors), tune_sample=200)
    items = VectorIndex.build(m.item_ids, l2_normalize(m.item_factors), tune_sample=200)
    res = evaluate_strategies(before, truth, users, items, size=audience_size, k_per_seed=k_per_seed)
    res.update(cut_ts=t, train_rows=len(before))
    return res


@dg.asset(
    kinds={"faiss"},
    check_specs=[
        dg.AssetCheckSpec(
            "lookalike_beats_most_active",
            asset=names.LOOKALIKE_EVALUATION,
            description="the winning strategy's audience recall exceeds the most-active-users baseline's",
        )
    ],
)
def lookalike_evaluation(
    context: dg.AssetExecutionContext,
    config: LookalikeEvaluationConfig,
    interactions: pd.DataFrame,
    als_model: FactorModel,
):
    """Backtest of U2U, I2U2U and I2I2U: seeds = a target item's audience before T, truth = its new
    users after T; recall and precision of an audience of ``audience_size`` against the most active
    users. The winner and its margin are recorded for the promotion policy."""
    res = lookalike_backtest(
        interactions,
        AlsParams.from_dict(als_model.params),
        config.cut_quantile,
        config.n_targets,
        config.audience_size,
        config.k_per_seed,
    )
    m = res["metrics"]
    context.log.info(
        "lookalike winner %s (recall %.3f; most active %.3f)",
        res["winner"],
        m[res["winner"]]["recall"],
        m["most_active"]["recall"],
    )
    yield dg.AssetCheckResult(
        check_name="lookalike_beats_most_active",
        passed=res["lift_over_baseline"] > 1,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"lift": round(res["lift_over_baseline"], 3)},
    )
    table = pd.DataFrame(m).T.reset_index(names="strategy")
    yield dg.Output(
        res,
        metadata={
            "winner": res["winner"],
            "margin_over_runner_up": round(res["margin_over_runner_up"], 4),
            "lift_over_most_active": round(res["lift_over_baseline"], 3),
            "targets": res["targets"],
            "audience_size": res["size"],
            **{f"{s}_recall@{res['size']}": round(v["recall"], 4) for s, v in m.items()},
            "table": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f")),
            "recall_plot": dg.MetadataValue.md(
                bars_markdown(
                    {s: v["recall"] for s, v in m.items()},
                    f"recall@{res['size']}",
                    "audience recall: strategies vs most active users",
                )
            ),
        },
    )
