"""Names are stated once, in ``recstack/names.py``: a literal copy of a model name, alias, tag,
Milvus alias or job name anywhere else in the product fails here, and so does a literal asset key
in the modules that name other modules' assets (orchestration, serving)."""

from __future__ import annotations

import ast
from pathlib import Path

from recstack import names

REPO = Path(__file__).resolve().parents[1]
ASSET_KEY_CONSUMERS = ("orchestration", "serving")


def _constants() -> tuple[dict[str, str], set[str]]:
    all_names = {v: k for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    start = list(vars(names)).index("INTERACTIONS")
    keys = {v for k, v in list(vars(names).items())[start:] if k.isupper() and isinstance(v, str)}
    return all_names, keys


def retyped_names(repo: Path = REPO) -> list[str]:
    """``path:line: 'literal' -> names.CONSTANT`` for every retyped name (docstrings aside)."""
    consts, keys = _constants()
    bad = []
    for top in ("assets", "resources", "serving", "orchestration"):
        for path in sorted((repo / top).rglob("*.py")):
            tree = ast.parse(path.read_text())
            docs = {
                id(n.body[0].value)
                for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and n.body
                and isinstance(n.body[0], ast.Expr)
                and isinstance(n.body[0].value, ast.Constant)
            }
            for n in ast.walk(tree):
                if (
                    not (isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in consts)
                    or id(n) in docs
                ):
                    continue
                if n.value in keys and top not in ASSET_KEY_CONSUMERS:
                    continue  # an asset's own module names it (function and check names)
                bad.append(f"{path.relative_to(repo)}:{n.lineno}: {n.value!r} -> names.{consts[n.value]}")
    return bad


def test_no_name_is_retyped():
    bad = retyped_names()
    assert bad == [], "use recstack.names:\n" + "\n".join(bad)


def test_the_check_catches_a_retyped_name(tmp_path):
    for top in ("assets/evaluation", "resources", "serving", "orchestration"):
        (tmp_path / top).mkdir(parents=True)
    (tmp_path / "assets/evaluation/x.py").write_text(
        '"""recstack-als in a docstring is fine."""\nM = "recstack-als"\n'
    )
    (tmp_path / "serving/y.py").write_text('KEY = "faiss_index_entities"\n')
    (tmp_path / "assets/evaluation/z.py").write_text(
        'KEY = "faiss_index_entities"\n'
    )  # its defining stage may
    assert retyped_names(tmp_path) == [
        "assets/evaluation/x.py:2: 'recstack-als' -> names.ALS_MODEL",
        "serving/y.py:1: 'faiss_index_entities' -> names.FAISS_INDEX_ENTITIES",
    ]


def test_every_model_has_a_promotion_policy():
    policies = {p.stem for p in (REPO / "mlflow" / "policies").glob("*.yaml")}
    assert policies == set(names.MODELS)
