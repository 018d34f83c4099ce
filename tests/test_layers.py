"""Dependencies point one way: ingest → features/embeddings → indexes → retrieval → evaluation.

``assets/common`` is below every stage; ``resources/`` imports nothing from ``assets/``. Every
import is checked, including those inside functions (they run just the same).
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RANK = {"common": 0, "ingest": 1, "features": 2, "embeddings": 2, "indexes": 3, "retrieval": 4, "evaluation": 5}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a Python file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.lineno, node.module)]
    return out


def violations(repo: Path = REPO) -> list[str]:
    bad = []
    for path in sorted((repo / "resources").rglob("*.py")):
        bad += [f"{path.relative_to(repo)}:{n}: resources import {m}" for n, m in imports(path) if m.split(".")[0] == "assets"]
    for path in sorted((repo / "assets").rglob("*.py")):
        stage = path.relative_to(repo / "assets").parts[0]
        if stage not in RANK:
            continue
        for n, m in imports(path):
            parts = m.split(".")
            if parts[0] != "assets" or len(parts) < 2 or parts[1] == stage:
                continue
            if parts[1] not in RANK:
                bad.append(f"{path.relative_to(repo)}:{n}: unknown stage in {m}")
            elif RANK[parts[1]] >= RANK[stage]:
                bad.append(f"{path.relative_to(repo)}:{n}: {stage} imports {m} (a stage at or above it)")
    return bad


def test_dependencies_point_one_way():
    bad = violations()
    assert bad == [], "imports against the layer order:\n" + "\n".join(bad)


def test_every_stage_package_is_ranked():
    stages = {p.name for p in (REPO / "assets").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages == set(RANK), f"rank the new stage(s) in RANK: {stages ^ set(RANK)}"


@pytest.mark.parametrize("stage,line,expected", [
    ("resources", "from assets.indexes.faiss_index import VectorIndex", "resources import assets.indexes.faiss_index"),
    ("assets/embeddings", "from assets.evaluation.offline import SplitSpec", "embeddings imports assets.evaluation.offline"),
    ("assets/features", "import assets.embeddings.als", "features imports assets.embeddings.als"),
])
def test_the_check_catches_an_upward_import(tmp_path, stage, line, expected):
    for s in RANK:
        (tmp_path / "assets" / s).mkdir(parents=True)
    (tmp_path / "resources").mkdir()
    (tmp_path / stage / "x.py").write_text(f"def f():\n    {line}\n")
    bad = violations(tmp_path)
    assert len(bad) == 1 and expected in bad[0] and ":2:" in bad[0], bad
