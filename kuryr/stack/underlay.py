"""The underlay between the machine's chassis and the simulated hosts: a userspace OVS bridge
``br-phy`` on each side carrying the host's tunnel address, joined by one veth per host.

On the machine's side this is the only change the simulated hosts make to the shared stack:
br-phy on its ovs-vswitchd with 192.168.250.1, and its chassis' ``ovn-encap-ip`` moved there
from 127.0.0.1. Both are undone when the last simulated host goes."""

from __future__ import annotations

import json

from kuryr.stack import netdev, ovs, proc
from kuryr.stack.errors import StackError
from kuryr.stack.hostplan import (
    INNER_LINK,
    LOOPBACK_ENCAP_IP,
    MAIN_UNDERLAY_IP,
    PHY_BRIDGE,
    UNDERLAY,
    SimHost,
    mesh,
)

COMPONENT = "underlay"
# Userspace tunnelling forgets a neighbour after this long without traffic from it and then
# drops the next packet to it; an hour (the longest OVS allows) outlasts a test session.
NEIGH_AGING = 3600


def ip(*args: str) -> str:
    return proc.run(COMPONENT, ["ip", *args])


def quiet_link(netns: str | None, link: str) -> None:
    """A veth that is only an OVS port: no IPv6 autoconfiguration, never answer ARP."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    proc.run(
        COMPONENT,
        [
            *prefix,
            "sysctl",
            "-qw",
            f"net.ipv6.conf.{link}.disable_ipv6=1",
            f"net.ipv4.conf.{link}.arp_ignore=8",
        ],
    )


def ensure_root() -> None:
    """br-phy on the machine's vswitchd with the underlay address; the chassis tunnels from
    there. Idempotent; also repairs the address a restarted vswitchd dropped."""
    ovs.vsctl(
        "--may-exist",
        "add-br",
        PHY_BRIDGE,
        "--",
        "set",
        "bridge",
        PHY_BRIDGE,
        "datapath_type=netdev",
    )
    ip("addr", "replace", f"{MAIN_UNDERLAY_IP}/{UNDERLAY.prefixlen}", "dev", PHY_BRIDGE)
    ip("link", "set", PHY_BRIDGE, "up")
    ovs.vsctl("set", "open_vswitch", ".", f"external-ids:ovn-encap-ip={MAIN_UNDERLAY_IP}")


def link_host(host: SimHost) -> None:
    """The host's network namespace and its veth to the machine's br-phy."""
    if not host.netns_path.exists():
        ip("netns", "add", host.netns)
    ip("-n", host.netns, "link", "set", "lo", "up")
    if host.root_link not in netdev.existing_links():
        ip(
            "link",
            "add",
            host.root_link,
            "type",
            "veth",
            "peer",
            "name",
            INNER_LINK,
            "netns",
            host.netns,
        )
    ip("link", "set", host.root_link, "up")
    ip("-n", host.netns, "link", "set", INNER_LINK, "up")
    quiet_link(None, host.root_link)
    quiet_link(host.netns, INNER_LINK)
    ovs.vsctl("--may-exist", "add-port", PHY_BRIDGE, host.root_link)


def unlink_host(host: SimHost) -> None:
    """Undo :func:`link_host` (the host's processes are gone)."""
    ovs.vsctl("--if-exists", "del-port", host.root_link)
    netdev.delete_links([host.root_link])
    if host.netns_path.exists():
        ip("netns", "del", host.netns)


def restore_root() -> None:
    """No simulated host is left: the machine's chassis back on 127.0.0.1, br-phy gone."""
    ovs.vsctl("set", "open_vswitch", ".", f"external-ids:ovn-encap-ip={LOOPBACK_ENCAP_IP}")
    ovs.vsctl("--if-exists", "del-br", PHY_BRIDGE)
    proc.run(COMPONENT, ["ovs-appctl", "tnl/neigh/flush"])


def _phy_mac(netns: str | None) -> str | None:
    argv = ["ip", *(["-n", netns] if netns else []), "-j", "link", "show", PHY_BRIDGE]
    try:
        links = json.loads(proc.run(COMPONENT, argv) or "[]")
    except (StackError, ValueError):
        return None  # a missing bridge or namespace: nothing to seed
    return str(links[0]["address"]) if links else None


def seed(hosts: list[SimHost]) -> None:
    """Teach every chassis the br-phy MAC of every other one, so that the first packet to a
    peer is not dropped while userspace tunnelling resolves it."""
    endpoints: dict[str, tuple[str, str]] = {}
    appctl: dict[str, list[str]] = {"": ["ovs-appctl"]}
    main_mac = _phy_mac(None)
    if main_mac is not None:
        endpoints[""] = (MAIN_UNDERLAY_IP, main_mac)
    for host in hosts:
        argv = appctl_argv(host)
        mac = _phy_mac(host.netns) if argv is not None else None
        if argv is not None and mac is not None:
            endpoints[host.name] = (host.underlay_ip, mac)
            appctl[host.name] = argv
    for on in endpoints:
        proc.run(COMPONENT, [*appctl[on], "tnl/neigh/aging", str(NEIGH_AGING)])
    for on, peer_ip, mac in mesh(endpoints):
        proc.run(COMPONENT, [*appctl[on], "tnl/neigh/set", PHY_BRIDGE, peer_ip, mac])


def appctl_argv(host: SimHost) -> list[str] | None:
    """ovs-appctl aimed at the host's ovs-vswitchd, or None while it is not running: a host
    whose processes died (a SIGKILL, a restarted machine) keeps its namespace and a stale
    pidfile until ``up`` restarts it, and is seeded then."""
    pid = proc.running(host.ovs_run / "ovs-vswitchd.pid", str(host.ovs_sock))
    if pid is None:
        return None
    return ["ovs-appctl", "-t", str(host.ovs_run / f"ovs-vswitchd.{pid}.ctl")]


def check() -> tuple[bool, str]:
    """The machine's side: its chassis tunnels from br-phy, which holds the underlay address."""
    try:
        encap = ovs.vsctl("get", "open_vswitch", ".", "external-ids:ovn-encap-ip", timeout=3)
        addresses = json.loads(
            proc.run(COMPONENT, ["ip", "-j", "addr", "show", PHY_BRIDGE]) or "[]"
        )
    except (StackError, ValueError) as exc:
        return False, str(exc)
    if encap.strip().strip('"') != MAIN_UNDERLAY_IP:
        return False, f"the machine's ovn-encap-ip is {encap.strip()}, not {MAIN_UNDERLAY_IP}"
    held = {a.get("local") for link in addresses for a in link.get("addr_info", [])}
    if MAIN_UNDERLAY_IP not in held:
        return False, f"{PHY_BRIDGE} does not hold {MAIN_UNDERLAY_IP}"
    return True, f"{PHY_BRIDGE} {MAIN_UNDERLAY_IP}, geneve to the simulated hosts"
