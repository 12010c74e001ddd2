"""``kuryr gc``: list what reconciliation would remove or finish; with ``--apply``, do it.

It runs beside a serving daemon safely: anything younger than ``--grace`` seconds is kept,
and pool ports are never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from kuryr.config import Config
from kuryr.errors import KuryrError
from kuryr.ops.reconcile import opened, run_once
from kuryr.ops.reconcile_plan import Plan


async def _run(args: argparse.Namespace, config: Config) -> tuple[Plan, list[str]]:
    scope = frozenset(args.network) if args.network else None
    async with opened(config, Path(args.docker_socket), args.grace, scope) as reconciler:
        return await run_once(reconciler, args.apply, args.networks)


def _print(plan: Plan, errors: list[str], args: argparse.Namespace) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "applied": args.apply,
                    "docker_seen": plan.docker_seen,
                    "actions": [
                        {"kind": a.kind, "id": a.ident, "reason": a.reason} for a in plan.actions
                    ],
                    "kept": plan.kept,
                    "errors": errors,
                },
                indent=2,
            )
        )
        return
    verb = "done" if args.apply else "would do"
    for action in plan.actions:
        print(f"{verb}: {action.describe()}")
    if not plan.docker_seen:
        print("dockerd did not answer: ports were not judged")
    kept = ", ".join(f"{n} {kind}" for kind, n in sorted(plan.kept.items())) or "nothing"
    print(f"{len(plan.actions)} orphan(s); kept {kept}")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)


def main(args: argparse.Namespace, config: Config) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        plan, errors = asyncio.run(_run(args, config))
    except (KuryrError, OSError, ValueError) as exc:
        print(f"kuryr gc: {exc}", file=sys.stderr)
        return 1
    _print(plan, errors, args)
    return 1 if errors else 0
