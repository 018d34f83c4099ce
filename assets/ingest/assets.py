"""Ingest assets: ``interactions`` from the synthetic generator or a real file, gated by GX."""


import dagster as dg
import pandas as pd

from assets.ingest.loaders import ImplicitConversion, load_interaction_file
from assets.ingest.synthetic import SyntheticSpec, generate_interactions
from resources.validation import GreatExpectationsResource, ValidationSummary


class InteractionsConfig(dg.Config):
    """Where interactions come from and how ratings become confidences."""

    source: str = "synthetic"  # "synthetic" or "file"
    path: str = ""  # for source="file": CSV, Parquet, JSON lines, or user::item::rating::ts (.dat)
    format: str = "auto"
    n_interactions: int = 100_000
    n_communities: int = 10
    seed: int = 42
    conversion: str = "linear"  # binary | linear | log
    alpha: float = 1.0
    min_rating: float | None = None


def load_interactions(config: InteractionsConfig) -> pd.DataFrame:
    """Raw interactions for ``config`` with a ``confidence`` column (not yet validated)."""
    if config.source == "synthetic":
        raw, _ = generate_interactions(
            SyntheticSpec(n_interactions=config.n_interactions, n_communities=config.n_communities, seed=config.seed)
        )
    elif config.source == "file":
        raw = load_interaction_file(config.path, config.format)
    else:
        raise dg.Failure(f"unknown interactions source {config.source!r} (synthetic, file)")
    conv = ImplicitConversion(method=config.conversion, alpha=config.alpha, min_rating=config.min_rating)
    return conv.apply(raw)


def check_result(summary: ValidationSummary, check_name: str, asset: str | None = None) -> dg.AssetCheckResult:
    """A Dagster check result carrying the GX summary."""
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset,
        passed=summary.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=summary.message(),
        metadata={"rows": summary.n_rows, "expectations": summary.evaluated, "failed": len(summary.failures),
                  "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in summary.failures) or "none")},
    )


def gate(summary: ValidationSummary, check_name: str, asset: str | None = None):
    """Yield the check result; raise before any output is written when the suite failed.

    Raising here (rather than letting the IO manager write and the check fail afterwards) is
    what keeps the previous good version published and every downstream asset from running.
    """
    yield check_result(summary, check_name, asset)
    if not summary.success:
        raise dg.Failure(description=summary.message(), metadata={"failures": len(summary.failures)})


@dg.asset(
    group_name="ingest",
    kinds={"pandas", "parquet"},
    check_specs=[dg.AssetCheckSpec("interactions_suite", asset="interactions", blocking=True,
                                   description="Great Expectations suite expectations/interactions.json")],
)
def interactions(context: dg.AssetExecutionContext, config: InteractionsConfig, gx: GreatExpectationsResource):
    """User–item interactions with an implicit-feedback ``confidence``.

    Columns: ``user_id``, ``item_id`` (int64), ``ts`` (unix seconds), ``rating`` (raw strength),
    ``confidence`` (non-negative weight used by ALS).
    """
    df = load_interactions(config)
    context.log.info("loaded %d interactions from %s", len(df), config.source)
    yield from gate(gx.validate(df, "interactions"), "interactions_suite")
    yield dg.Output(
        df,
        metadata={
            "rows": len(df),
            "users": int(df["user_id"].nunique()),
            "items": int(df["item_id"].nunique()),
            "source": config.source,
            "density": float(len(df) / max(1, df["user_id"].nunique() * df["item_id"].nunique())),
            "preview": dg.MetadataValue.md(df.head(5).to_markdown(index=False)),
        },
    )
