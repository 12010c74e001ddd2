"""``kuryr stack up|down|status|hosts``: prints one row per component and simulated host, a
usage summary after up, and for failures a one-line reason plus the tail of the failing
component's log."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from kuryr.stack import hostplan, hosts, keystone, lifecycle, managed, ovs, proc, vmplan, vms
from kuryr.stack.errors import StackError
from kuryr.stack.layout import (
    DOCKER_SOCK,
    KEYSTONE_URL,
    NEUTRON_KEYSTONE_URL,
    NEUTRON_URL,
    PLUGIN_SOCK,
    Layout,
)
from kuryr.stack.lifecycle import Health
from kuryr.stack.postgres import Postgres


def _table(report: list[Health]) -> str:
    width = max(len(h.name) for h in report)
    return "\n".join(
        f"  {h.name:<{width}}  {'ok  ' if h.healthy else 'FAIL'}  {h.detail}" for h in report
    )


def _summary(layout: Layout) -> str:
    kuryr = f"unix://{PLUGIN_SOCK} (config {layout.sub('kuryr.conf')})"
    if managed.plugin_mode(layout):
        kuryr = f"managed plugin {managed.PLUGIN} (docker plugin inspect {managed.PLUGIN})"
    identity = ""
    if keystone.enabled(layout):
        clouds = keystone.Keystone(layout, Postgres(layout)).clouds_yaml
        identity = (
            f"\n  Keystone       {KEYSTONE_URL}/v3 (clouds kuryr-stack, kuryr-stack-admin in "
            f"{clouds})\n  Neutron API    {NEUTRON_KEYSTONE_URL} (Keystone auth, same resources)"
        )
    return f"""
Stack directory {layout.root} (configs, databases, pidfiles; logs in {layout.logs}).
  Neutron API    {NEUTRON_URL} (noauth: no token needed){identity}
  Docker         unix://{DOCKER_SOCK}, image kuryr/busybox
  Kuryr driver   {kuryr}
Try:
  docker network create -d kuryr --ipam-driver kuryr test
  docker run --rm --net test kuryr/busybox ip addr
  ovn-nbctl show
  kuryr stack status   |   kuryr stack down [--purge]"""


def _fail(layout: Layout, exc: StackError) -> int:
    print(f"kuryr stack: {exc}", file=sys.stderr)
    if exc.log is not None:
        lines = proc.tail(exc.log)
        if lines:
            print(f"--- last lines of {exc.log}:", file=sys.stderr)
            print("\n".join(lines), file=sys.stderr)
    return 1


def _up(
    layout: Layout,
    count: int | None,
    plugin: bool | None,
    identity: lifecycle.KeystoneChoice,
    vm_choice: lifecycle.VmChoice | None,
) -> int:
    began = time.monotonic()
    report = lifecycle.up(layout, count, plugin, identity, vm_choice)
    print(_table(report))
    print(f"stack up in {time.monotonic() - began:.1f} s")
    print(_summary(layout))
    if hostplan.present(layout.root) or vmplan.present(layout.root):
        print(_hosts_table(layout))
    return 0


def _down(layout: Layout, purge: bool, hosts_only: bool, vms_only: bool) -> int:
    if (hosts_only or vms_only) and purge:
        only = "--hosts-only" if hosts_only else "--vms-only"
        print(f"kuryr stack: down {only} keeps the stack: --purge does not apply", file=sys.stderr)
        return 2
    if hosts_only and vms_only:
        print("kuryr stack: down takes --hosts-only or --vms-only, not both", file=sys.stderr)
        return 2
    errors = lifecycle.down(layout, purge, hosts_only, vms_only)
    for exc in errors:
        _fail(layout, exc)
    if not errors:
        what = "stack down"
        if hosts_only or vms_only:
            what = f"simulated {'hosts' if hosts_only else 'VMs'} removed"
        print(f"{what}{' and purged' if purge else ''} ({layout.root})")
    return 1 if errors else 0


def _described(layout: Layout) -> list[dict[str, object]]:
    """The hosts, the machine's first, then the simulated VMs (kind ``vm``)."""
    chassis = ovs.hostname()
    return hosts.describe(layout, chassis) + vms.describe(layout, chassis)


def _hosts_table(layout: Layout) -> str:
    rows = _described(layout)
    lines = ["Hosts (DOCKER_HOST=<docker_host> docker ... talks to one):"]
    lines += [
        f"  {r['name']:<8} chassis {r['chassis']:<8} {r['docker_host']}"
        + (f"  netns {r['namespace']}" if r["namespace"] else "")
        + (f"  nested {r['mode']} VM" if r["kind"] == "vm" else "")
        for r in rows
    ]
    return "\n".join(lines)


def _hosts(layout: Layout, as_json: bool) -> int:
    if as_json:
        print(json.dumps(_described(layout), indent=1))
    else:
        print(_hosts_table(layout))
    return 0


def _status(layout: Layout) -> int:
    report = lifecycle.status(layout)
    print(_table(report))
    return 0 if lifecycle.healthy(report) else 1


def main(args: argparse.Namespace) -> int:
    layout = Layout.resolve(args.dir)
    try:
        if args.action == "up":
            identity = lifecycle.KeystoneChoice(args.keystone, args.token_lifetime)
            vm_choice = None
            if args.vms is not None:
                vm_choice = lifecycle.VmChoice(args.vms, args.vm_mode)
            return _up(layout, args.hosts, args.plugin, identity, vm_choice)
        if args.action == "down":
            return _down(layout, args.purge, args.hosts_only, args.vms_only)
        if args.action == "hosts":
            return _hosts(layout, args.json)
        return _status(layout)
    except hostplan.PlanError as exc:
        print(f"kuryr stack: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        return _fail(layout, exc)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"kuryr stack: {args.action} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kuryr stack: interrupted", file=sys.stderr)
        return 130
