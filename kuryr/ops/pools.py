"""``kuryr pools show|fill|drain``: pool control through the running daemon's admin socket
(:mod:`kuryr.ops.admin_server` says why through the daemon)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kuryr.backends.unixhttp import json_call
from kuryr.config import Config
from kuryr.ops import admin_api


def main(args: argparse.Namespace, config: Config) -> int:
    path = admin_api.socket_path(config.state_dir)
    try:
        if args.action == "show":
            answer = json_call(path, "GET", admin_api.POOLS)
        elif args.action == "fill":
            answer = json_call(
                path, "POST", admin_api.POOLS_FILL, {"subnet_id": args.subnet, "count": args.count}
            )
        else:
            answer = json_call(
                path, "POST", admin_api.POOLS_DRAIN, {"subnet_id": args.subnet, "keep": args.keep}
            )
    except (OSError, RuntimeError) as exc:
        print(f"kuryr pools {args.action}: {path}: {exc}", file=sys.stderr)
        return 1
    if args.action == "show" and not args.json:
        _print_table(answer)
    else:
        print(json.dumps(answer, indent=2, sort_keys=True))
    return 0


def _print_table(answer: dict[str, Any]) -> None:
    cfg = answer["config"]
    print(f"pool config: {admin_api.config_line(cfg)}")
    print(f"{'subnet':36}  {'mode':5}  {'free':>4}  {'target':>6}  {'taken':>5}  {'creating':>8}")
    for pool in answer["pools"]:
        print(
            f"{pool['subnet_id']:36}  {pool['mode']:5}  {pool['free']:>4}  {pool['target']:>6}  "
            f"{pool['taken']:>5}  {pool['creating']:>8}"
        )
