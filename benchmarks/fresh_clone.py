"""Set-up from a fresh clone: ``make install``, ``make run`` and ``make test`` timed, with no pip cache.

    python -m benchmarks.fresh_clone [--dest /tmp/recstack-fresh] [--skip-test]

Clones this repository's ``HEAD`` into ``DEST/main`` (with ``DEST/shared`` linked to the datasets
beside this checkout, as the project lays them out), runs the three commands there with
``PIP_NO_CACHE_DIR=1`` and writes ``benchmarks/results/fresh_clone.json``: seconds per command, the
commit, ``make run``'s success line and the test counts. There is no baseline: these are the
figures the README's two commands are held to (well inside CI's 90 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
from pathlib import Path

from benchmarks.common import write_result
from recstack import settings

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, int, str]:
    """Run ``cmd`` with no pip cache; ``(seconds, exit status, output)`` (output also in ``log``)."""
    t0 = time.perf_counter()
    env = settings.child_env(PIP_NO_CACHE_DIR="1")
    env.pop("PYTHONPATH", None)  # the clone imports its own tree, never this checkout's
    with log.open("w") as f:
        rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    return round(time.perf_counter() - t0, 1), rc, log.read_text()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=Path("/tmp/recstack-fresh"))
    ap.add_argument("--skip-test", action="store_true")
    args = ap.parse_args(argv)
    shutil.rmtree(args.dest, ignore_errors=True)
    args.dest.mkdir(parents=True)
    (args.dest / "shared").symlink_to(settings.shared_data().parent)
    subprocess.run(["git", "clone", "-q", str(REPO), str(args.dest / "main")], check=True)
    clone = args.dest / "main"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
    ).stdout.strip()
    out: dict = {"commit": commit, "steps": {}}
    steps = [("install", ["make", "install"]), ("run", ["make", "run"])] + (
        [] if args.skip_test else [("test", ["make", "test"])]
    )
    for name, cmd in steps:
        secs, rc, text = timed(cmd, clone, args.dest / f"{name}.log")
        step = {"seconds": secs, "exit_code": rc}
        if name == "run":
            m = re.search(r"(SUCCESS|FAILED) in (\d+)s.*?(\d+) assets materialized", text, re.S)
            step.update(
                success=bool(m and m.group(1) == "SUCCESS"),
                graph_seconds=int(m.group(2)) if m else None,
                assets=int(m.group(3)) if m else None,
                error_lines=sum(1 for line in text.splitlines() if "ERROR" in line or "Traceback" in line),
            )
        if name == "test":
            counts = re.findall(
                r"(\d+) (passed|failed|skipped|errors?|xfailed)", text.splitlines()[-1] if text else ""
            )
            step["counts"] = {k: int(v) for v, k in counts}
        out["steps"][name] = step
        print(f"  {name}: {secs} s, exit {rc}", flush=True)
        if rc:
            break
    print(f"written {write_result('fresh_clone', out)}")
    return max(s["exit_code"] for s in out["steps"].values())


if __name__ == "__main__":
    raise SystemExit(main())
