"""The import rules, checked on every import (those inside functions too: they run just the same).

- Stages point one way: ingest → features/embeddings → indexes → retrieval → evaluation → tuning.
  ``assets/common`` is below every stage; ``recstack/`` (names, settings) is below everything and
  imports nothing of the project.
- Pure modules never import dagster, an asset module or a ``_shared`` module. Asset modules
  (``*_assets.py``) never import each other: what two of them share lives in a pure module or in a
  stage's ``_shared.py``.
- ``resources/`` imports nothing from ``assets/``; ``serving/`` imports pure code and resources only.
- The ALS engines never import each other (they share ``assets/embeddings/als.py``).
- Nothing under ``assets/``, ``resources/``, ``serving/`` or ``recstack/`` imports ``orchestration/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RANK = {
    "common": 0,
    "ingest": 1,
    "features": 2,
    "embeddings": 2,
    "indexes": 3,
    "retrieval": 4,
    "evaluation": 5,
    "tuning": 6,
}
PROJECT = ("assets", "resources", "serving", "orchestration", "recstack")
ALS_ENGINES = {"assets.embeddings.als_spark", "assets.embeddings.als_cpu", "assets.embeddings.als_gpu"}


def _is_module(repo: Path, dotted: str) -> bool:
    p = repo / Path(*dotted.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def imports(path: Path, repo: Path = REPO) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a Python file. ``from a import b`` counts as
    importing ``a.b`` when that is a module of the project (so ``from assets.embeddings import
    als_assets`` is seen), else as importing ``a``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            mods = [m for m in subs if _is_module(repo, m)]
            out += [(node.lineno, m) for m in mods] or [(node.lineno, node.module)]
    return out


def kind(module: str) -> str:
    """``asset`` (a ``*_assets`` module), ``shared`` (a ``_shared`` module) or ``pure``."""
    last = module.rsplit(".", 1)[-1]
    return "asset" if last.endswith("_assets") else "shared" if last == "_shared" else "pure"


def module_name(repo: Path, path: Path) -> str:
    return ".".join(path.relative_to(repo).with_suffix("").parts)


def violations(repo: Path = REPO) -> list[str]:
    bad = []
    for top in PROJECT:
        for path in sorted((repo / top).rglob("*.py")):
            me = module_name(repo, path)
            where = f"{path.relative_to(repo)}"
            for n, m in imports(path, repo):
                root = m.split(".")[0]
                if root == "orchestration" and top != "orchestration":
                    bad.append(f"{where}:{n}: {top} imports {m} (only orchestration may)")
                if top == "recstack" and root in PROJECT and root != "recstack":
                    bad.append(f"{where}:{n}: recstack imports {m} (recstack is the lowest layer)")
                if top == "resources" and root == "assets":
                    bad.append(f"{where}:{n}: resources import {m}")
                if top == "serving" and (root == "dagster" or (root == "assets" and kind(m) != "pure")):
                    bad.append(f"{where}:{n}: serving imports {m} (pure code and resources only)")
                if me in ALS_ENGINES and m in ALS_ENGINES and m != me:
                    bad.append(f"{where}:{n}: ALS engine imports engine {m}")
                if top != "assets":
                    continue
                stage = path.relative_to(repo / "assets").parts[0]
                if stage not in RANK:
                    continue
                mine, theirs = kind(me), kind(m)
                if mine == "pure" and (root == "dagster" or root.startswith("dagster_")):
                    bad.append(f"{where}:{n}: pure module imports {m}")
                if root != "assets":
                    continue
                if mine == "pure" and theirs != "pure":
                    bad.append(f"{where}:{n}: pure module imports {m} (a Dagster module)")
                if mine != "pure" and theirs == "asset" and m != me:
                    bad.append(
                        f"{where}:{n}: asset modules import each other: {m} (move it to a pure module or "
                        f"_shared.py)"
                    )
                parts = m.split(".")
                if len(parts) < 2 or parts[1] == stage:
                    continue
                if parts[1] not in RANK:
                    bad.append(f"{where}:{n}: unknown stage in {m}")
                elif RANK[parts[1]] >= RANK[stage] and parts[1] != "common":
                    bad.append(f"{where}:{n}: {stage} imports {m} (a stage at or above it)")
    return sorted(set(bad))


def test_dependencies_point_one_way():
    bad = violations()
    assert bad == [], "imports against the layer rules:\n" + "\n".join(bad)


def test_every_stage_package_is_ranked():
    stages = {p.name for p in (REPO / "assets").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages == set(RANK), f"rank the new stage(s) in RANK: {stages ^ set(RANK)}"


PLANTED = [
    (
        "resources/x.py",
        "from assets.indexes.faiss_index import VectorIndex",
        "resources import assets.indexes.faiss_index",
    ),
    (
        "assets/embeddings/x.py",
        "from assets.evaluation.offline import SplitSpec",
        "embeddings imports assets.evaluation.offline",
    ),
    ("assets/features/x.py", "import assets.embeddings.als", "features imports assets.embeddings.als"),
    ("assets/embeddings/x.py", "import dagster as dg", "pure module imports dagster"),
    (
        "assets/embeddings/x.py",
        "from assets.embeddings.als_assets import AlsConfig",
        "pure module imports assets.embeddings.als_assets",
    ),
    (
        "assets/embeddings/y_assets.py",
        "from assets.embeddings.als_assets import vector_outputs",
        "asset modules import each other",
    ),
    (
        "assets/embeddings/y_assets.py",
        "from assets.embeddings import als_assets",
        "asset modules import each other",
    ),
    (
        "serving/x.py",
        "from assets.embeddings.als_assets import AlsConfig",
        "serving imports assets.embeddings.als_assets",
    ),
    ("serving/x.py", "import dagster", "serving imports dagster"),
    (
        "assets/embeddings/als_gpu.py",
        "from assets.embeddings.als_cpu import train_als_cpu",
        "ALS engine imports engine assets.embeddings.als_cpu",
    ),
    (
        "assets/features/x.py",
        "from orchestration.definitions import defs",
        "assets imports orchestration.definitions",
    ),
    ("serving/x.py", "from orchestration import deployments", "serving imports orchestration"),
    ("resources/x.py", "import orchestration.deployments", "resources imports orchestration.deployments"),
    ("recstack/x.py", "from resources.spark import SparkResource", "recstack imports resources.spark"),
]


@pytest.mark.parametrize("file,line,expected", PLANTED, ids=[p[2] for p in PLANTED])
def test_each_rule_catches_a_planted_violation(tmp_path, file, line, expected):
    for s in RANK:
        (tmp_path / "assets" / s).mkdir(parents=True)
    for top in PROJECT:
        (tmp_path / top).mkdir(exist_ok=True)
    for m in (
        "assets/embeddings/als_assets.py",
        "assets/embeddings/als_cpu.py",
        "assets/embeddings/als.py",
        "assets/indexes/faiss_index.py",
        "assets/evaluation/offline.py",
        "orchestration/definitions.py",
        "orchestration/deployments.py",
        "resources/spark.py",
    ):
        (tmp_path / m).write_text("")
    (tmp_path / file).write_text(f"def f():\n    {line}\n")
    bad = violations(tmp_path)
    assert len(bad) == 1 and expected in bad[0] and ":2:" in bad[0], bad


# Started by a server: the app by uvicorn/gunicorn (`make serve`, k8s/recall-service.yaml), the
# gunicorn settings by `gunicorn -c` there.
ENTRY_POINTS = {"serving.app", "serving.gunicorn_conf"}


def unused_by_product(repo: Path = REPO) -> list[str]:
    """Modules under assets/, resources/ or serving/ that neither a product module nor a benchmark
    imports (by an import statement or by a dotted name, as the feature-store backends are loaded).
    Asset modules are discovered by the Definitions, pyfunc files are loaded by MLflow by path, and
    :data:`ENTRY_POINTS` are started by a server; anything else only tests import is test code."""
    imported: set[str] = set()
    for top in (*PROJECT, "benchmarks"):
        for path in (repo / top).rglob("*.py"):
            names = [m for _, m in imports(path, repo)]
            names += [
                n.value
                for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.Constant)
                and isinstance(n.value, str)
                and n.value.split(".")[0] in PROJECT
                and " " not in n.value
            ]
            for m in names:
                parts = m.split(".")
                imported.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    out = []
    for top in ("assets", "resources", "serving"):
        for path in sorted((repo / top).rglob("*.py")):
            me = module_name(repo, path)
            if (
                path.name == "__init__.py"
                or kind(me) == "asset"
                or path.stem.endswith("_pyfunc")
                or me in ENTRY_POINTS
                or me in imported
            ):
                continue
            out.append(str(path.relative_to(repo)))
    return out


def test_every_product_module_is_used_by_the_product():
    assert unused_by_product() == [], "imported only by tests (move it under tests/support/):\n" + "\n".join(
        unused_by_product()
    )


def test_the_unused_check_catches_a_test_only_module(tmp_path):
    for d in ("assets/common", "resources", "serving", "orchestration", "recstack", "benchmarks"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "resources" / "gateway.py").write_text("")
    (tmp_path / "resources" / "spark.py").write_text("")
    (tmp_path / "orchestration" / "deployments.py").write_text("from resources import spark\n")
    assert unused_by_product(tmp_path) == ["resources/gateway.py"]
