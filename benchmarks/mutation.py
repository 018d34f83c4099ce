"""``make mutation``: mutation testing of the core pure modules with their unit tests (mutmut 3).

Runs ``mutmut run`` with the ``[tool.mutmut]`` section of ``pyproject.toml`` (modules, tests,
fork-server isolation), then reads mutmut's per-file results and writes
``benchmarks/results/mutation.json``: per module, mutants, killed, survived (and timeouts, which
count as killed: the mutant hung the tests), the kill rate, and the surviving mutants' names
(``mutmut show NAME`` prints one). Not part of ``make test``: it takes tens of minutes here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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
        out[module] = {"mutants": len(codes), "killed": killed, "survived": len(survivors), "not_run": not_run,
                       "kill_rate": round(killed / max(1, len(codes) - not_run), 4), "survivors": survivors}
    return out


def main() -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRPC_ENABLE_FORK_SUPPORT": "false",
           "RECSTACK_SHARED_DATA": os.environ.get("RECSTACK_SHARED_DATA", str(ROOT.parent / "shared" / "data"))}
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "mutmut", "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    result = {"tool": "mutmut", "seconds": round(time.perf_counter() - t0), "exit_code": run.returncode,
              "modules": summarise(ROOT / "mutants")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for module, r in result["modules"].items():
        print(f"{module:<36} {r['killed']:>4}/{r['mutants'] - r['not_run']:<4} killed ({r['kill_rate']:.1%}), "
              f"{r['survived']} survived")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
