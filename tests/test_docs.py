"""The docs are shaped like the code: a short README, a site that builds strictly, and benchmark
figures with one source (the results files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks import report

REPO = Path(__file__).resolve().parents[1]


def test_readme_is_short():
    n = len((REPO / "README.md").read_text().splitlines())
    assert n <= 200, f"README.md has {n} lines: move detail to docs/"


def test_benchmarks_page_is_generated_from_the_results():
    assert (REPO / "docs" / "benchmarks.md").read_text() == report.render(), "run `make docs`"


def test_every_results_file_has_a_section(tmp_path):
    page = report.render()
    for p in sorted(report.RESULTS.glob("*.json")):
        assert f"`benchmarks/results/{p.name}`" in page, p.name
    # an unknown results file still gets a section, with its numbers
    (tmp_path / "new_bench.json").write_text(
        json.dumps({"benchmark": "new_bench", "speedup": 3.5, "nested": {"qps": 12}})
    )
    page = report.render(tmp_path)
    assert "## new_bench" in page and "| speedup | 3.5000 |" in page and "| nested.qps | 12 |" in page


def test_readme_links_resolve():
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    missing = [link for link in links if "://" not in link and not (REPO / link).exists()]
    assert links and missing == [], missing
