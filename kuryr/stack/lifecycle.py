"""up, down and status over the stack's components, in dependency order."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kuryr.stack import host, hostplan, hosts, keystone, managed, vmplan, vms
from kuryr.stack.component import Component
from kuryr.stack.daemon import KuryrDaemon
from kuryr.stack.docker import Docker
from kuryr.stack.errors import StackError
from kuryr.stack.external import External
from kuryr.stack.layout import Layout
from kuryr.stack.neutron import Neutron
from kuryr.stack.neutron_keystone import NeutronKeystone
from kuryr.stack.ovn import OvnCentral, OvnController
from kuryr.stack.ovs import OpenVSwitch, hostname
from kuryr.stack.postgres import Postgres
from kuryr.stack.subnetpools import Subnetpools

# Components whose failure does not keep the ones after them from starting (dockerd serves
# its own networks without the daemon; nothing but the Keystone tests needs Keystone);
# ``up`` still fails on them, once the rest is up.
NOT_BLOCKING = {KuryrDaemon.name, keystone.Keystone.name, NeutronKeystone.name}


@dataclass(frozen=True)
class Health:
    name: str
    healthy: bool
    detail: str


def components(layout: Layout) -> list[Component]:
    """In start order. The bare daemon comes before dockerd (dockerd finds its socket at
    start); the managed plugin after it (dockerd runs it). Keystone and its Neutron, when the
    stack runs them, come last: nothing else needs them."""
    postgres = Postgres(layout)
    kuryr: list[Component] = [KuryrDaemon(layout), Docker(layout)]
    if managed.plugin_mode(layout):
        kuryr = [Docker(layout), managed.KuryrPlugin(layout)]
    return [*_base(layout, postgres, kuryr), *_keystone(layout, postgres)]


def _keystone(layout: Layout, postgres: Postgres) -> list[Component]:
    if not keystone.enabled(layout):
        return []
    identity = keystone.Keystone(layout, postgres)
    return [identity, NeutronKeystone(layout, postgres, identity)]


def _base(layout: Layout, postgres: Postgres, kuryr: list[Component]) -> list[Component]:
    return [
        OpenVSwitch(layout),
        OvnCentral(layout),
        OvnController(layout),
        postgres,
        Neutron(layout, postgres),
        Subnetpools(layout),
        External(layout),
        *kuryr,
    ]


def require_root() -> None:
    if os.geteuid() != 0:
        raise StackError("stack", "must run as root (it starts OVS, OVN, PostgreSQL, dockerd)")


@contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """One up or down at a time: concurrent test sessions share one stack."""
    layout.create()
    with open(layout.sub("lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class VmChoice:
    """``up --vms N [--vm-mode MODE]``: the simulated VMs vm1 … vmN (kuryr.stack.vms)."""

    count: int
    mode: str = vmplan.MIXED


@dataclass(frozen=True)
class KeystoneChoice:
    """``up --keystone`` (on), ``--no-keystone`` (off), neither (None: as before); and
    ``--token-lifetime`` (None: as before)."""

    on: bool | None = None
    token_lifetime: int | None = None


def up(
    layout: Layout,
    count: int | None = None,
    plugin: bool | None = None,
    identity: KeystoneChoice | None = None,
    vm_choice: VmChoice | None = None,
) -> list[Health]:
    """Start what is not running, and with ``count`` the simulated hosts h2 … h<count>,
    with ``vm_choice`` the simulated VMs; raise StackError naming the first component, host
    or VM that failed or is not healthy."""
    report = start(layout, count, plugin, identity, vm_choice)
    for h in report:
        if not h.healthy:
            raise StackError(h.name, h.detail, log_of(layout, h.name))
    return report


def start(
    layout: Layout,
    count: int | None = None,
    plugin: bool | None = None,
    identity: KeystoneChoice | None = None,
    vm_choice: VmChoice | None = None,
) -> list[Health]:
    """Start what is not running and report every component's, host's and VM's health. A
    failure raises StackError at once, except that of a NOT_BLOCKING component or of a
    simulated host or VM: its row carries it. Without ``count`` (``vm_choice``) existing
    simulated hosts (VMs) are left alone; without ``plugin`` Kuryr runs as it did (the bare
    daemon, or the managed plugin)."""
    require_root()
    if count is not None:
        hostplan.names(count)  # a bad count changes nothing
    if vm_choice is not None:
        vmplan.names(vm_choice.count)
        vmplan.mode_of(1, vm_choice.mode)
    failures: list[Health] = []
    with locked(layout):
        host.remember(layout)
        if plugin is not None:
            managed.switch(layout, plugin)
        _switch_keystone(layout, identity or KeystoneChoice())
        if count is not None and count > 1:
            hosts.wanted(layout)
        for component in components(layout):
            try:
                component.start()
            except StackError as exc:
                if component.name not in NOT_BLOCKING:
                    raise
                failures.append(Health(component.name, False, exc.reason))
        if count is not None and count > 1:
            rows = hosts.up(layout, count)
        else:
            # Hosts a plain up was not asked for are reported by status, not judged here.
            hosts.keep(layout)
            rows = []
        if vm_choice is not None:
            rows += add_vms(layout, vm_choice)
    reported = {f.name: f for f in failures}
    own = [reported.get(h.name, h) for h in _component_status(layout)]
    return own + [Health(r.name, r.healthy, r.detail) for r in rows]


def add_vms(layout: Layout, choice: VmChoice) -> list[hosts.Row]:
    """The simulated VMs, on the stack as it runs (the caller holds the lock)."""
    return vms.up(layout, choice.count, choice.mode, hostname())


def start_vms(layout: Layout, choice: VmChoice) -> list[Health]:
    """Only the simulated VMs, on a stack that is up: what the nested tests share. Nothing
    of the machine's own stack is started or restarted."""
    require_root()
    vmplan.names(choice.count)
    with locked(layout):
        rows = add_vms(layout, choice)
    return [Health(r.name, r.healthy, r.detail) for r in rows]


def _switch_keystone(layout: Layout, choice: KeystoneChoice) -> None:
    """Record the choice; ``--no-keystone`` stops what ``--keystone`` started."""
    if choice.token_lifetime is not None:
        keystone.Keystone(layout, Postgres(layout)).set_token_lifetime(choice.token_lifetime)
    if choice.on is None or choice.on == keystone.enabled(layout):
        return
    if not choice.on:
        for component in reversed(_keystone(layout, Postgres(layout))):
            component.stop()
    keystone.remember(layout, choice.on)


def down(
    layout: Layout, purge: bool = False, hosts_only: bool = False, vms_only: bool = False
) -> list[StackError]:
    """Remove the simulated VMs and hosts, then stop everything in reverse order; return the
    errors met (all steps are attempted). ``hosts_only`` removes the simulated hosts and
    nothing else, ``vms_only`` the simulated VMs and nothing else."""
    require_root()
    errors: list[StackError] = []
    if not layout.root.exists():
        return errors
    with locked(layout):
        if not hosts_only:
            errors += vms.remove_all(layout)
        if not vms_only:
            errors += hosts.remove_all(layout)
        if hosts_only or vms_only:
            return errors
        for component in reversed(components(layout)):
            try:
                component.stop()
                if purge:
                    component.purge()
            except StackError as exc:
                errors.append(exc)
        host.restore(layout)
    if purge:
        host.unmount_under(layout.root)
        shutil.rmtree(layout.root, ignore_errors=True)
    return errors


def status(layout: Layout) -> list[Health]:
    """Every component, then every simulated host and VM."""
    rows = hosts.status(layout) + vms.status(layout)
    return _component_status(layout) + [Health(r.name, r.healthy, r.detail) for r in rows]


def _component_status(layout: Layout) -> list[Health]:
    return [Health(c.name, *c.check()) for c in components(layout)]


def healthy(report: list[Health]) -> bool:
    return all(h.healthy for h in report)


def log_of(layout: Layout, name: str) -> Path | None:
    for component in components(layout):
        if component.name == name:
            return component.log
    return None
