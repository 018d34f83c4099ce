"""Move ``champion`` by hand: ``python -m orchestration.registry_cli status|promote|rollback``.

    python -m orchestration.registry_cli status  --model recstack-als
    python -m orchestration.registry_cli promote --model recstack-als --version 3 --reason "A/B test won"
    python -m orchestration.registry_cli rollback --model recstack-als

The tracking store is ``MLFLOW_TRACKING_URI`` (default: this checkout's ``.recstack`` SQLite
store). Every move tags the version with who moved it, when and why; the old champion becomes
``previous_champion``, which ``rollback`` returns to.
"""

from __future__ import annotations

import argparse
import sys

from recstack import names, settings


def _resource():
    from recstack.settings import mlflow_tracking_uri
    from resources.mlflow_tracking import MlflowResource

    return MlflowResource(tracking_uri=mlflow_tracking_uri())


def status(model: str) -> list[dict]:
    """Every version of ``model`` with its aliases and promotion tags, newest first."""
    return [
        {
            "version": v["version"],
            "aliases": v["aliases"],
            "promotion": v["tags"].get(names.TAG_PROMOTION, ""),
            "reason": v["tags"].get(names.TAG_PROMOTION_REASON, ""),
        }
        for v in _resource().versions(model)
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m orchestration.registry_cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
                print(
                    f"{args.model} has no version {args.version} (versions: {sorted(known, key=int)})",
                    file=sys.stderr,
                )
                return 2
            prev = res.move_champion(args.model, args.version, args.reason, by=settings.user())
            print(f"{args.model}: champion {prev or 'none'} -> {args.version}")
        elif args.cmd == "rollback":
            frm, to = res.rollback_champion(args.model, by=settings.user())
            print(f"{args.model}: champion {frm} -> {to} (rolled back)")
        for r in status(args.model):
            print(
                f"  v{r['version']:<4} {','.join(r['aliases']) or '-':<32} {r['promotion']:<14} {r['reason']}"
            )
    except RuntimeError as e:
        print(str(e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
