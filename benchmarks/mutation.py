"""``make mutation``: mutation testing of the core pure modules with their unit tests (mutmut 3).

Runs ``mutmut run`` with the ``[tool.mutmut]`` section of ``pyproject.toml`` (modules, tests,
fork-server isolation), then reads mutmut's per-file results and writes
``benchmarks/results/mutation.json``: per module, mutants, killed, survived (and timeouts, which
count as killed: the mutant hung the tests), the kill rate, and the surviving mutants' names
(``mutmut show NAME`` prints one). Not part of ``make test``: it takes tens of minutes here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from recstack import settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
# mutmut's statuses: a mutant that a test failed on, that hung the tests or crashed them is killed;
# one that every test passed, or that no test ran, survived.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def summarise(mutants_dir: Path) -> dict:
    """Per module: counts and survivors from mutmut's ``*.py.meta`` files under ``mutants_dir``."""
    out = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants_dir))[: -len(".meta")]
        from mutmut.stats import status_by_exit_code

        codes = json.loads(meta.read_text())["exit_code_by_key"]
        status = {k: status_by_exit_code[c] for k, c in codes.items()}
        killed = sum(1 for s in status.values() if s in KILLED)
        not_run = sum(1 for s in status.values() if s == "not checked")
        survivors = sorted(k for k, s in status.items() if s not in KILLED and s != "not checked")
        out[module] = {
            "mutants": len(codes),
            "killed": killed,
            "survived": len(survivors),
            "not_run": not_run,
            "kill_rate": round(killed / max(1, len(codes) - not_run), 4),
            "survivors": survivors,
        }
    return out


EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.md"


def reviewed_equivalents(text: str) -> dict[str, set[str]]:
    """Per module (``## path`` headings), the mutants listed as equivalent in the review file.

    A row's first cell names mutants in backticks: a full name (``x_topk__mutmut_6``), a
    continuation of the previous one (```_10```), or a range (```x_f__mutmut_52``…``_57```).
    """
    out: dict[str, set[str]] = {}
    module = None
    for line in text.splitlines():
        if line.startswith("## "):
            module = line[3:].strip()
            out.setdefault(module, set())
        elif module and line.startswith("| `"):
            cell = line.split("|")[1]
            prefix = None
            for part in re.split(r",\s*", cell.strip()):
                names = re.findall(r"`([^`]+)`", part)
                if not names:
                    continue
                full = []
                for n in names:
                    if re.fullmatch(r"_\d+", n) and prefix:
                        n = prefix + n[1:]
                    prefix = n.rsplit("_", 1)[0] + "_"
                    full.append(n)
                if "…" in part and len(full) == 2:
                    a, b = (int(x.rsplit("_", 1)[1]) for x in full)
                    full = [f"{prefix}{i}" for i in range(a, b + 1)]
                out[module].update(full)
    return out


def with_review(result: dict, review: dict[str, set[str]]) -> dict:
    """Add to each module the survivors reviewed as equivalent, the unreviewed ones, and the kill
    rate of the non-equivalent mutants."""
    for module, r in result.items():
        names = review.get(module, set())
        equivalent = sorted(
            s for s in r["survivors"] if any(s.endswith("." + n) or s.endswith("ǁ" + n) for n in names)
        )
        r["equivalent"] = len(equivalent)
        r["unreviewed_survivors"] = [s for s in r["survivors"] if s not in equivalent]
        run = r["mutants"] - r["not_run"] - len(equivalent)
        r["kill_rate_non_equivalent"] = round(r["killed"] / max(1, run), 4)
    return result


def main() -> int:
    if sys.argv[1:] == ["--review"]:  # re-apply the review file to the last results
        result = json.loads(RESULTS.read_text())
        with_review(result["modules"], reviewed_equivalents(EQUIVALENT.read_text()))
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    env = settings.child_env(
        OMP_NUM_THREADS="1",
        GRPC_ENABLE_FORK_SUPPORT="false",
        RECSTACK_SHARED_DATA=str(settings.shared_data()),
    )
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "mutmut", "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    result = {
        "tool": "mutmut",
        "seconds": round(time.perf_counter() - t0),
        "exit_code": run.returncode,
        "modules": with_review(summarise(ROOT / "mutants"), reviewed_equivalents(EQUIVALENT.read_text())),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    from benchmarks import report

    report.main([])  # docs/benchmarks.md shows the new table
    for module, r in result["modules"].items():
        print(
            f"{module:<36} {r['killed']:>4}/{r['mutants'] - r['not_run']:<4} killed ({r['kill_rate']:.1%}), "
            f"{r['survived']} survived"
        )
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
