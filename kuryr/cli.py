"""The ``kuryr`` command. Each subcommand lives in the module that owns its work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kuryr import config as config_mod
from kuryr.config import Config

# Exit status of any subcommand whose configuration cannot be loaded (kuryr health's aside).
CONFIG_REFUSED = 2

# A subcommand's work, given its arguments and the configuration loaded once for it.
Handler = Callable[[argparse.Namespace, Config], int]


def _serve(args: argparse.Namespace, config: Config) -> int:
    from kuryr import app

    return app.main(args, config)


def _pools(args: argparse.Namespace, config: Config) -> int:
    from kuryr.ops import pools

    return pools.main(args, config)


def _gc(args: argparse.Namespace, config: Config) -> int:
    if args.host:
        from kuryr.ops import gc_host

        return gc_host.main(args, config)
    from kuryr.ops import gc

    return gc.main(args, config)


def _status(args: argparse.Namespace, config: Config) -> int:
    if args.hosts:
        from kuryr.ops import host_pools

        return host_pools.main(args, config)
    from kuryr.ops import status

    return status.main(args, config)


def _port(args: argparse.Namespace, config: Config) -> int:
    from kuryr.ops import port

    return port.main(args, config)


def _health(args: argparse.Namespace, config: Config) -> int:
    from kuryr.ops import health

    return health.main(args, config)


def _config_refused(command: str, error: Exception) -> int:
    if command == "health":
        from kuryr.ops import health

        return health.config_refused(error)
    print(f"kuryr {command}: cannot load configuration: {error}", file=sys.stderr)
    return CONFIG_REFUSED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kuryr", description=__doc__)
    parser.add_argument("--config-file", help="INI config (default /etc/kuryr/kuryr.conf)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the Docker network and IPAM driver (foreground)")
    serve.set_defaults(handler=_serve)

    stack = sub.add_parser("stack", help="the local single-node OVS+OVN+Neutron+dockerd stack")
    stack.add_argument("action", choices=["up", "down", "status", "hosts"])
    stack.add_argument("--dir", help="stack directory (default /var/lib/kuryr-stack)")
    stack.add_argument("--purge", action="store_true", help="down: also drop databases/state")
    stack.add_argument(
        "--hosts",
        type=int,
        metavar="N",
        help="up: also simulated Docker hosts h2 … hN (N counts the machine's own host)",
    )
    stack.add_argument(
        "--hosts-only",
        action="store_true",
        help="down: remove the simulated hosts only, leave the machine's stack running",
    )
    stack.add_argument(
        "--vms",
        type=int,
        metavar="N",
        help="up: also simulated VMs vm1 … vmN on the machine's host, Kuryr in nested mode "
        "inside each (README: Nested mode)",
    )
    stack.add_argument(
        "--vm-mode",
        choices=["mixed", "macvlan", "vlan"],
        default="mixed",
        help="up --vms: every VM's nested mode, or mixed (the default): odd VMs macvlan, "
        "even VMs vlan",
    )
    stack.add_argument(
        "--vms-only",
        action="store_true",
        help="down: remove the simulated VMs only, leave the machine's stack and hosts running",
    )
    stack.add_argument("--json", action="store_true", help="hosts: print JSON")
    stack.add_argument(
        "--plugin",
        action=argparse.BooleanOptionalAction,
        help="up: run Kuryr as the managed Docker plugin (make plugin) instead of kuryr serve, "
        "and keep doing so on later ups; --no-plugin: back to kuryr serve",
    )
    stack.add_argument(
        "--keystone",
        action=argparse.BooleanOptionalAction,
        help="up: also run Keystone (127.0.0.1:5000) and a Keystone-protected neutron-server "
        "(127.0.0.1:9697, same database and OVN), and keep doing so on later ups; "
        "--no-keystone: stop them",
    )
    stack.add_argument(
        "--token-lifetime",
        type=int,
        metavar="SECONDS",
        help="up: the lifetime of the stack Keystone's tokens (default 3600; kept for later ups)",
    )

    gc = sub.add_parser("gc", help="list (with --apply: remove) orphaned Neutron/OVS resources")
    gc.add_argument("--apply", action="store_true", help="remove/finish them (default: dry run)")
    gc.add_argument(
        "--grace", type=float, default=60.0, help="keep what changed in the last SECONDS (60)"
    )
    gc.add_argument(
        "--networks",
        action="store_true",
        help="also judge Kuryr networks dockerd does not know (only where this host is the "
        "single Docker host of its Neutron project)",
    )
    gc.add_argument("--docker-socket", default="/var/run/docker.sock", help="dockerd's socket")
    gc.add_argument(
        "--network",
        action="append",
        metavar="NEUTRON_NET_ID",
        help="judge only the ports on this Neutron network (repeatable)",
    )
    gc.add_argument(
        "--host",
        metavar="NAME",
        help="instead: a host gone for good (binding:host_id NAME, or vm-port:<VM port id> for "
        "a daemon in a VM): its Kuryr ports and its claims on shared networks (refused while "
        "its chassis is alive, or its VM port exists)",
    )
    gc.add_argument("--json", action="store_true", help="machine-readable output")
    gc.set_defaults(handler=_gc)

    pools = sub.add_parser("pools", help="show, fill or drain the pre-created port pools")
    pools.add_argument("action", choices=["show", "fill", "drain"])
    pools.add_argument("--subnet", help="one Neutron subnet's pool (default: all)")
    pools.add_argument("--count", type=int, default=0, help="fill: ports to add (default: max)")
    pools.add_argument("--keep", type=int, default=0, help="drain: free ports to keep")
    pools.add_argument("--json", action="store_true", help="show: JSON instead of a table")
    pools.set_defaults(handler=_pools)

    status = sub.add_parser(
        "status", help="networks, endpoints and pools the running daemon manages on this host"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--hosts",
        action="store_true",
        help="instead: Kuryr's pool, in-use and anchor ports per host and network, from Neutron",
    )
    status.set_defaults(handler=_status)

    port = sub.add_parser(
        "port", help="a container's Neutron port on each Kuryr network, from the daemon's state"
    )
    port.add_argument("container", help="container name or id")
    port.add_argument("--docker-socket", default="/var/run/docker.sock", help="dockerd's socket")
    port.add_argument("--json", action="store_true", help="machine-readable output")
    port.set_defaults(handler=_port)

    health = sub.add_parser(
        "health", help="check the daemon's socket, Neutron and OVSDB (exit 0 when all answer)"
    )
    health.set_defaults(handler=_health)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "stack":
        # The stack writes the configuration the other subcommands read; it reads none.
        from kuryr.stack import cli as stack_cli

        return stack_cli.main(args)
    try:
        config = config_mod.load(Path(args.config_file) if args.config_file else None)
    except (OSError, ValueError) as exc:
        return _config_refused(args.command, exc)
    handler: Handler = args.handler
    return handler(args, config)


if __name__ == "__main__":
    sys.exit(main())
