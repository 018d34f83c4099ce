"""Great Expectations validation: suites are JSON data files in ``expectations/``.

A suite file is GX's own serialisation (``{"name": ..., "expectations": [{"type": ..., "kwargs":
...}]}``) so it can be edited without touching code. :func:`validate_frame` runs one against a
pandas DataFrame in an ephemeral context (no files written) and returns a summary that names
every failing expectation with its unexpected-row count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dagster import ConfigurableResource

from recstack import settings

DEFAULT_SUITES_DIR = str(Path(__file__).resolve().parent.parent / "expectations")


@dataclass
class ValidationSummary:
    suite: str
    success: bool
    n_rows: int
    evaluated: int
    failures: list[str] = field(default_factory=list)

    def message(self) -> str:
        if self.success:
            return f"suite '{self.suite}': all {self.evaluated} expectations passed on {self.n_rows} rows"
        return (
            f"suite '{self.suite}' failed {len(self.failures)} of {self.evaluated} expectations on "
            f"{self.n_rows} rows: " + "; ".join(self.failures)
        )


@lru_cache(maxsize=1)
def _context():
    settings.ensure_default("GX_ANALYTICS_ENABLED")  # before great_expectations imports
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ds = ctx.data_sources.add_pandas("recstack_pandas")
    return ctx, ds


@lru_cache(maxsize=1)
def _spark_source():
    """A Spark data source in the same context: a Spark frame is validated where it lives, on
    the executors, without collecting it."""
    ctx, _ = _context()
    return ctx.data_sources.add_spark("recstack_spark")


def _is_spark(df) -> bool:
    return type(df).__module__.startswith("pyspark.sql")


def load_suite(path: str | Path):
    """Load a suite JSON file into a ``gx.ExpectationSuite``."""
    import great_expectations as gx

    spec = json.loads(Path(path).read_text())
    return gx.ExpectationSuite(name=spec["name"], expectations=spec["expectations"])


def _describe(r) -> str:
    cfg = r.expectation_config
    kw = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    target = kw.get("column") or kw.get("column_list") or kw.get("column_set") or ""
    res = r.result or {}
    if r.exception_info and any(v.get("raised_exception") for v in _exc_dicts(r.exception_info)):
        msg = next(v["exception_message"] for v in _exc_dicts(r.exception_info) if v.get("raised_exception"))
        return f"{cfg.type}({target}): error: {msg}"
    if "unexpected_count" in res:
        total = res.get("element_count", "?")
        return f"{cfg.type}({target}): {res['unexpected_count']} of {total} rows unexpected"
    if "observed_value" in res:
        return f"{cfg.type}({target}): observed {res['observed_value']!r}"
    return f"{cfg.type}({target}) failed"


def _exc_dicts(info: dict) -> list[dict]:
    if "raised_exception" in info:
        return [info]
    return [v for v in info.values() if isinstance(v, dict)]


def validate_frame(df, suite_path: str | Path, params: dict | None = None) -> ValidationSummary:
    """Validate ``df`` (a pandas or a Spark DataFrame) against the suite stored at ``suite_path``;
    ``params`` fill the suite's ``{"$PARAMETER": name}`` values (the warehouse's lines, event types,
    dimensions)."""
    suite = load_suite(suite_path)
    ctx, ds = _context()
    if _is_spark(df):
        ds = _spark_source()
    name = f"{suite.name}"
    try:
        asset = ds.get_asset(name)
    except LookupError:
        asset = ds.add_dataframe_asset(name)
    try:
        bd = asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        bd = asset.add_batch_definition_whole_dataframe("whole")
    batch = bd.get_batch(batch_parameters={"dataframe": df})
    res = batch.validate(
        suite, expectation_parameters={k: list(v) for k, v in (params or {}).items()} or None
    )
    failures = [_describe(r) for r in res.results if not r.success]
    return ValidationSummary(
        suite=suite.name,
        success=bool(res.success),
        n_rows=df.count() if _is_spark(df) else len(df),
        evaluated=len(res.results),
        failures=failures,
    )


class GreatExpectationsResource(ConfigurableResource):
    """Where suites live (the same files locally and in production)."""

    suites_dir: str = DEFAULT_SUITES_DIR

    def validate(self, df, suite: str, params: dict | None = None) -> ValidationSummary:
        """Validate ``df`` (pandas or Spark) against ``suites_dir/<suite>.json`` (``params``: its
        parameters)."""
        path = Path(self.suites_dir) / f"{suite}.json"
        if not path.exists():
            raise FileNotFoundError(f"no expectation suite {suite!r} at {path}")
        return validate_frame(df, path, params)


class InputError(ValueError):
    """Input that cannot be loaded as given: names the file, the problem and, where known, the row.

    Loaders raise it for every malformed input (unreadable, undecodable, wrong shape, wrong
    types); assets turn it into a :class:`dagster.Failure` with :meth:`failure`, so a user sees
    one sentence in the Dagster UI instead of a pandas or codec stack trace.
    """

    def __init__(
        self, problem: str, source: str | None = None, row: int | None = None, hint: str | None = None
    ):
        self.problem, self.source, self.row, self.hint = problem, source, row, hint
        where = f"{source}: " if source else ""
        at = f"row {row}: " if row is not None else ""
        super().__init__(f"{where}{at}{problem}" + (f" ({hint})" if hint else ""))

    def at(self, source: str) -> InputError:
        """This error naming ``source`` (when the code that raised it did not know the file)."""
        return self if self.source else InputError(self.problem, source, self.row, self.hint)

    def failure(self):
        """This error as a ``dagster.Failure`` (description and structured metadata)."""
        import dagster as dg

        md = {
            "problem": self.problem,
            **({"file": self.source} if self.source else {}),
            **({"row": self.row} if self.row is not None else {}),
            **({"hint": self.hint} if self.hint else {}),
        }
        return dg.Failure(description=str(self), metadata=md, allow_retries=False)


def check_result(summary: ValidationSummary, check_name: str, asset: str | None = None):
    """A Dagster blocking-check result carrying the GX summary."""
    import dagster as dg

    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset,
        passed=summary.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=summary.message(),
        metadata={
            "rows": summary.n_rows,
            "expectations": summary.evaluated,
            "failed": len(summary.failures),
            "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in summary.failures) or "none"),
        },
    )


def gate(summary: ValidationSummary, check_name: str, asset: str | None = None):
    """Yield the check result; raise before any output is written when the suite failed.

    Raising here (rather than letting the IO manager write and the check fail afterwards) is
    what keeps the previous good version published and every downstream asset from running.
    """
    import dagster as dg

    yield check_result(summary, check_name, asset)
    if not summary.success:
        raise dg.Failure(
            description=summary.message(), metadata={"failures": len(summary.failures)}, allow_retries=False
        )
