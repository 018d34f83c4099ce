"""Pins that install anywhere: check them, and regenerate ``constraints.txt`` without local paths.

``pip freeze`` writes ``name @ file:///…whl`` for a package installed from a local wheel; such a
line installs only on the machine that has the file. Every RecStack dependency is on the package
registry, so every pin must be a plain ``name==version``.

    python .ci/pins.py check             # exit 1 naming each bad line in the install files
    python .ci/pins.py freeze PIP > F    # pip freeze via PIP, local/URL lines rewritten to name==version
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.!+_-]+$")
# The one index other than the registry's default: the official PyTorch CPU wheels, for the
# container image only (a machine here installs torch==2.13.0 from its own CPU wheel).
ALLOWED_INDEXES = {"https://download.pytorch.org/whl/cpu"}


def bad_pin(spec: str) -> str | None:
    """Why ``spec`` is not a plain ``name==version`` registry pin, or None when it is."""
    s = spec.strip()
    if " @ " in s or s.startswith(("file:", "http:", "https:", "git+", "/", "./", "../", "-e")) or "://" in s:
        return "a local path or URL, not a registry pin"
    if not PIN.match(s):
        return "not an exact name==version pin"
    return None


def constraint_lines(text: str) -> list[tuple[int, str]]:
    """(line number, requirement) for every non-comment line of a requirements/constraints file."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.split(" #", 1)[0].strip()
        if s and not s.startswith("#"):
            out.append((n, s))
    return out


def pyproject_pins(text: str) -> list[tuple[int, str]]:
    """(line number, requirement) of every quoted requirement in pyproject's dependency lists."""
    out, inside = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*(dependencies|dev)\s*=\s*\[", line):
            inside = True
        if inside:
            out += [(n, m) for m in re.findall(r'"([^"]+)"', line.split("#", 1)[0])]
            if "]" in line.split("#", 1)[0]:
                inside = False
    return out


def pip_install_args(text: str) -> list[tuple[int, str]]:
    """(line number, argument) of every argument of a ``pip install`` in a Makefile or Dockerfile."""
    out = []
    for n, line in enumerate(text.replace("\\\n", " ").splitlines(), 1):
        for cmd in re.findall(r"pip install (.*?)(?:&&|;|\||$)", line):
            toks = re.findall(r"\"[^\"]*\"|'[^']*'|\S+", cmd)
            skip_next = False
            for t in toks:
                t = t.strip("'\"")
                if skip_next:
                    skip_next = False
                    if t not in ALLOWED_INDEXES and not t.endswith("constraints.txt"):
                        out.append((n, t))
                    continue
                if t in ("-c", "--index-url", "--extra-index-url", "-r", "--constraint", "--requirement"):
                    skip_next = True
                    continue
                if re.match(r"^\d*>", t):  # a shell redirection ends the arguments
                    break
                if t.startswith("-") or t.startswith("$(") or t in (".", ".[dev]") or t.startswith(".["):
                    continue
                out.append((n, t))
    return out


def check(repo: Path = REPO) -> list[str]:
    """Every problem in the files the install reads, as ``file:line: text (why)``."""
    problems = []
    files = {
        "constraints.txt": constraint_lines,
        "pyproject.toml": pyproject_pins,
        "Makefile": pip_install_args,
        "k8s/Dockerfile": pip_install_args,
        "k8s/Dockerfile.cuda": pip_install_args,
    }
    for name, parse in files.items():
        p = repo / name
        if not p.exists():
            continue
        for n, spec in parse(p.read_text()):
            why = bad_pin(spec)
            if why:
                problems.append(f"{name}:{n}: {spec} ({why})")
    return problems


def freeze(pip: str) -> tuple[str, list[str]]:
    """``pip freeze`` through ``pip``, each local-path/URL line rewritten to ``name==version``.

    Returns the constraints text and the rewritten lines (reported, never silently written).
    """
    frozen = subprocess.run(
        [pip, "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    ).stdout
    versions = dict(
        re.findall(
            r"^(\S+)==(\S+)$",
            subprocess.run(
                [pip, "list", "--format=freeze"], capture_output=True, text=True, check=True
            ).stdout,
            re.M,
        )
    )
    lines, rewritten = [], []
    for line in frozen.splitlines():
        if not line.strip() or line.lower().startswith("recstack"):
            continue
        if bad_pin(line):
            name = re.split(r"\s*@\s*|[=<>!~ ]", line.strip(), maxsplit=1)[0]
            if name not in versions:
                raise SystemExit(f"cannot rewrite {line!r}: no installed version of {name!r}")
            new = f"{name}=={versions[name]}"
            rewritten.append(f"{line.strip()} -> {new}")
            line = new
        lines.append(
            re.sub(r"\+cpu$", "", line.strip())
        )  # torch's local version label: the registry has no +cpu
    header = "# Full transitive pin set (pip freeze of a clean install). Regenerate: make constraints\n"
    return header + "\n".join(lines) + "\n", rewritten


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    if argv[:1] == ["freeze"] and len(argv) == 2:
        text, rewritten = freeze(argv[1])
        for r in rewritten:
            print(f"pins: rewrote a local/URL pin: {r}", file=sys.stderr)
        sys.stdout.write(text)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
