"""Simulated Docker hosts ``h2`` … ``hN`` beside the machine's own: each one a chassis of the
shared OVN (:mod:`kuryr.stack.simovs`) with its own dockerd and Kuryr daemon
(:mod:`kuryr.stack.simdocker`), joined to the machine by the underlay
(:mod:`kuryr.stack.underlay`). The caller holds the stack lock.

``up`` only adds or repairs the hosts it is asked for and leaves others alone; ``remove``
takes one host away for good and gives back what it held (its containers and Kuryr networks,
its Neutron ports and agent, its chassis, namespace, links, cgroups and files)."""

from __future__ import annotations

import functools
import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from kuryr import naming
from kuryr.domain.ports.port import Port
from kuryr.ops import admin_api
from kuryr.stack import hostplan, neutron_api, proc, teardown, underlay
from kuryr.stack.errors import StackError
from kuryr.stack.hostplan import SimHost
from kuryr.stack.layout import DOCKER_SOCK, Layout
from kuryr.stack.simdocker import SimDaemon, SimDocker, SimRelay
from kuryr.stack.simovs import SimChassis

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Row:
    """One host's health, as ``kuryr stack status`` prints it."""

    name: str
    healthy: bool
    detail: str


def storage_driver(layout: Layout) -> str:
    """The storage driver the machine's dockerd settled on (overlay2 unless it could not)."""
    try:
        return layout.sub("docker-storage-driver").read_text().strip() or "overlay2"
    except OSError:
        return "overlay2"


@dataclass(frozen=True)
class Parts:
    chassis: SimChassis
    relay: SimRelay
    daemon: SimDaemon
    docker: SimDocker


def parts(layout: Layout, host: SimHost) -> Parts:
    return Parts(
        SimChassis(host),
        SimRelay(host),
        SimDaemon(host, tx_checksum_offload=False),
        SimDocker(host, storage_driver(layout)),
    )


def wanted(layout: Layout) -> None:
    """Mark the stack as multi-host before its own components start, so that the machine's
    chassis and daemon are configured for tunnels from the first ``up --hosts``."""
    hostplan.hosts_dir(layout.root).mkdir(parents=True, exist_ok=True)


def multihost(layout: Layout) -> bool:
    return hostplan.hosts_dir(layout.root).is_dir()


def up(layout: Layout, count: int) -> list[Row]:
    """Start or repair h2 … h<count>; a failing host does not keep the next from starting."""
    planned = hostplan.planned(layout.root, count)
    wanted(layout)
    underlay.ensure_root()
    failed: dict[str, str] = {}
    for host in planned:
        try:
            start(layout, host)
        except StackError as exc:
            failed[host.name] = exc.reason
    underlay.seed(hostplan.present(layout.root))
    rows = status(layout)
    return [Row(r.name, False, failed[r.name]) if r.name in failed else r for r in rows]


def keep(layout: Layout) -> None:
    """After a plain ``up``: the machine's side of the underlay, for the hosts that exist."""
    if hostplan.present(layout.root):
        underlay.ensure_root()
        underlay.seed(hostplan.present(layout.root))


def start(layout: Layout, host: SimHost) -> None:
    for directory in (host.logs, host.runfs, host.plugin_specs, host.pidfile("x").parent):
        directory.mkdir(parents=True, exist_ok=True)
    underlay.link_host(host)
    p = parts(layout, host)
    restarted = p.chassis.start()
    if restarted or not p.chassis.agent_alive():
        p.chassis.make_agent_alive()
    p.relay.start()
    # Before dockerd, which restarts containers with a restart policy through it.
    p.daemon.start()
    p.docker.start()


def status(layout: Layout) -> list[Row]:
    present = hostplan.present(layout.root)
    if not present:
        return []
    return [Row("underlay", *underlay.check()), *(check(layout, host) for host in present)]


def check(layout: Layout, host: SimHost) -> Row:
    p = parts(layout, host)
    if not host.netns_path.exists():
        return Row(host.name, False, f"network namespace {host.netns} is missing")
    for part in (p.chassis, p.relay, p.daemon, p.docker):
        ok, detail = part.check()
        if not ok:
            return Row(host.name, False, detail)
    return Row(host.name, True, f"chassis {host.name} on {host.underlay_ip}, {host.docker_host}")


def members(host: SimHost) -> list[int]:
    """Every process of the host: those in its network namespace (its OVS, ovn-controller,
    dockerd, containerd, shims and daemon), their descendants (containers), and its relay."""
    try:
        netns = host.netns_path.stat()
    except OSError:
        inside: list[int] = []
    else:
        inside = [pid for pid in _pids() if _in_netns(pid, netns.st_dev, netns.st_ino)]
    found = set(inside)
    for pid in inside:
        found.update(proc.descendants(pid))
    relay = proc.running(host.pidfile("nsrelay"), str(host.netns_path))
    if relay is not None:
        found.add(relay)
    return sorted(pid for pid in found if proc.alive(pid))


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _in_netns(pid: int, dev: int, ino: int) -> bool:
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def remove(layout: Layout, host: SimHost) -> list[StackError]:
    """Take the host away for good; every step is attempted, the errors met are returned."""
    p = parts(layout, host)
    steps = (
        p.docker.clear,
        p.docker.stop,
        p.daemon.stop,
        p.relay.stop,
        p.chassis.stop,
        p.chassis.forget,
        lambda: forget_ports(host),
        lambda: _terminate(members(host)),
        lambda: underlay.unlink_host(host),
        lambda: remove_cgroups(host),
    )
    return teardown.remove_one(steps, host.root)


def remove_all(layout: Layout) -> list[StackError]:
    """Remove every simulated host, then the machine's side of the underlay."""
    if not multihost(layout):
        return []
    return teardown.remove_members(
        hostplan.present(layout.root),
        functools.partial(remove, layout),
        underlay.restore_root,
        hostplan.hosts_dir(layout.root),
    )


def forget_ports(host: SimHost) -> None:
    """Delete the Kuryr ports still bound to the host (pool ports it kept ready, anchors of
    networks it adopted): nothing can use them once the host is gone."""
    owners = "&".join(f"device_owner={o}" for o in (naming.DEVICE_OWNER, naming.ANCHOR_OWNER))
    query = f"/v2.0/ports?binding:host_id={host.name}&{owners}"
    try:
        for raw in neutron_api.call("GET", query)["ports"]:
            neutron_api.call("DELETE", f"/v2.0/ports/{Port.from_neutron(raw).id}")
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise StackError(host.name, f"cannot delete its Neutron ports: {exc}") from exc


def _terminate(pids: list[int]) -> None:
    for pid in pids:
        proc.terminate(pid, timeout=5)


def remove_cgroups(host: SimHost) -> None:
    """The cgroups its containers ran in (dockerd's --cgroup-parent), deepest first."""
    name = host.cgroup_parent.lstrip("/")
    for hierarchy in CGROUP_ROOT.glob("*"):
        top = hierarchy / name
        if not top.is_dir():
            continue
        for directory in sorted(
            (d for d in top.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
        ):
            _rmdir(directory)
        _rmdir(top)


def _rmdir(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError as exc:
        raise StackError("hosts", f"cannot remove cgroup {directory}: {exc.strerror}") from exc


def describe(layout: Layout, chassis: str) -> list[dict[str, object]]:
    """Every host, the machine's own first: what ``kuryr stack hosts`` prints. ``kind`` is
    ``host`` (a chassis with its own OVS); issue 15's simulated VMs are to be listed as
    ``vm``."""
    rows: list[dict[str, object]] = [
        {
            "name": chassis,
            "kind": "host",
            "chassis": chassis,
            "docker_host": f"unix://{DOCKER_SOCK}",
            "namespace": "",
            "underlay_ip": hostplan.encap_ip(multihost(layout)),
            "main": True,
        }
    ]
    for host in hostplan.present(layout.root):
        rows.append(
            {
                "name": host.name,
                "kind": "host",
                "chassis": host.name,
                "docker_host": host.docker_host,
                "namespace": host.netns,
                "underlay_ip": host.underlay_ip,
                "main": False,
                "ovs_db": f"unix:{host.ovs_sock}",
                "plugin_socket": str(host.plugin_sock),
                "admin_socket": str(admin_api.socket_path(host.state_dir)),
                "pids": members(host),
            }
        )
    return rows
