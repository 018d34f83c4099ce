"""Move ``champion`` by hand: ``python -m orchestration.registry status|promote|rollback``.

    python -m orchestration.registry status  --model recstack-als
    python -m orchestration.registry promote --model recstack-als --version 3 --reason "A/B test won"
    python -m orchestration.registry rollback --model recstack-als

The tracking store is ``MLFLOW_TRACKING_URI`` (default: this checkout's ``.recstack`` SQLite
store). Every move tags the version with who moved it, when and why; the old champion becomes
``previous_champion``, which ``rollback`` returns to.
"""

from __future__ import annotations

import argparse
import os
import sys


def _resource():
    from orchestration.settings import home
    from resources.mlflow_tracking import MlflowResource

    uri = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{home() / 'mlflow' / 'mlflow.db'}")
    return MlflowResource(tracking_uri=uri)


def status(model: str) -> list[dict]:
    """Every version of ``model`` with its aliases and promotion tags, newest first."""
    _, client = _resource()._client()
    rows = []
    for v in sorted(client.search_model_versions(f"name='{model}'"), key=lambda v: int(v.version), reverse=True):
        v = client.get_model_version(model, str(v.version))  # search results carry no aliases
        rows.append({"version": str(v.version), "aliases": sorted(v.aliases or []),
                     "promotion": v.tags.get("recstack.promotion", ""), "reason": v.tags.get("recstack.promotion.reason", "")})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m orchestration.registry", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("status", "promote", "rollback"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        if name == "promote":
            p.add_argument("--version", required=True)
            p.add_argument("--reason", default="promoted by hand")
    args = ap.parse_args(argv)
    res = _resource()
    try:
        if args.cmd == "promote":
            known = {r["version"] for r in status(args.model)}
            if str(args.version) not in known:
                print(f"{args.model} has no version {args.version} (versions: {sorted(known, key=int)})", file=sys.stderr)
                return 2
            prev = res.move_champion(args.model, args.version, args.reason, by=os.environ.get("USER", "manual"))
            print(f"{args.model}: champion {prev or 'none'} -> {args.version}")
        elif args.cmd == "rollback":
            frm, to = res.rollback_champion(args.model, by=os.environ.get("USER", "manual"))
            print(f"{args.model}: champion {frm} -> {to} (rolled back)")
        for r in status(args.model):
            print(f"  v{r['version']:<4} {','.join(r['aliases']) or '-':<32} {r['promotion']:<14} {r['reason']}")
    except RuntimeError as e:
        print(str(e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
