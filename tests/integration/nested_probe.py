"""A diagnostic for nested ``macvlan`` mode on the real stack (``python -m
tests.integration.nested_probe``, under the stack lock): the scene of test_nested_macvlan.py
(a namespace for the VM, its NIC the VIF of the VM's port; two containers on macvlans of it;
a VM-like peer port), with frames recorded on the VM's NIC, the peer's NIC and a container's
device while that container pings the peer, and OVN's view of the container ports before and
after (Logical_Switch_Port type and options, Port_Binding chassis, ``ovn-trace`` of the
peer's answer). It prints what it saw; nothing is asserted, everything is removed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from kuryr.backends.binding.macvlan import MacvlanBinder
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.binding.registry import load
from kuryr.backends.netlink import Netlink
from kuryr.backends.state import State
from kuryr.config import BindingConfig
from kuryr.domain.ports import desired
from kuryr.domain.ports.mine import Mark
from kuryr.domain.ports.port import Port
from kuryr.stack.layout import NB_PORT, SB_PORT
from tests.integration.domain_helpers import neutron_client
from tests.integration.host_binders import plug_into
from tests.netns import Namespaces, configure, move_link, ping
from tests.vlan_responder import packet_socket

NEUTRON = "http://127.0.0.1:9696"
PREFIX = "wt15m-probe-"


def hostname() -> str:
    done = subprocess.run(
        ["ovs-vsctl", "get", "open", ".", "external-ids:hostname"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().strip('"')


def ovn(tool: str, *args: str) -> str:
    port = NB_PORT if tool == "ovn-nbctl" else SB_PORT
    done = subprocess.run(
        [tool, f"--db=tcp:127.0.0.1:{port}", "--timeout=10", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout + done.stderr


def lsp(port_id: str) -> str:
    return ovn(
        "ovn-nbctl",
        "--columns=type,addresses,port_security,options,up",
        "find",
        "Logical_Switch_Port",
        f"name={port_id}",
    )


def binding(port_id: str) -> str:
    return ovn(
        "ovn-sbctl",
        "--columns=type,chassis,virtual_parent,up",
        "find",
        "Port_Binding",
        f"logical_port={port_id}",
    )


def flows_of(switch: str, mac: str, ip: str) -> list[str]:
    """The switch's logical flows that name the MAC or the IP (l2 lookup, ARP, ACLs)."""
    listed = ovn("ovn-sbctl", "lflow-list", switch)
    return [line.strip() for line in listed.splitlines() if mac in line or f"{ip} " in line]


def openflow(mac: str, key: str) -> list[str]:
    """br-int's OpenFlow flows on the MAC, or on the port's tunnel key as logical outport
    (reg15), with their packet counts."""
    done = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    wanted = (mac, f"reg15={hex(int(key))},")
    return [
        " ".join(line.split()[3:])
        for line in done.stdout.splitlines()
        if any(w in line for w in wanted) and "n_packets=0," not in line
    ]


def tunnel_key(port_id: str) -> str:
    out = ovn(
        "ovn-sbctl",
        "--bare",
        "--columns=tunnel_key",
        "find",
        "Port_Binding",
        f"logical_port={port_id}",
    )
    return out.strip() or "0"


def describe(frame: bytes) -> str:
    """One line per frame: MACs, and ARP or IPv4/ICMP fields."""
    dst, src, ethertype = frame[0:6].hex(":"), frame[6:12].hex(":"), frame[12:14]
    kind = struct.unpack("!H", ethertype)[0]
    body = frame[14:]
    if kind == 0x0806:
        op = struct.unpack("!H", body[6:8])[0]
        sha, spa = body[8:14].hex(":"), socket.inet_ntoa(body[14:18])
        tpa = socket.inet_ntoa(body[24:28])
        what = {1: "request", 2: "reply"}.get(op, str(op))
        return f"{src} > {dst} ARP {what} who-has {tpa} tell {spa} (sha {sha})"
    if kind == 0x0800:
        ips, ipd, proto = socket.inet_ntoa(body[12:16]), socket.inet_ntoa(body[16:20]), body[9]
        extra = ""
        if proto == 1:
            ihl = (body[0] & 0x0F) * 4
            extra = {0: " ICMP echo reply", 8: " ICMP echo request"}.get(body[ihl], " ICMP")
        return f"{src} > {dst} IPv4 {ips} > {ipd} proto {proto}{extra}"
    return f"{src} > {dst} ethertype 0x{kind:04x}"


class Sniffer:
    """Every frame seen on one link of one namespace, with its direction, in a thread."""

    def __init__(self, netns: str, ifname: str) -> None:
        self.sock = packet_socket(netns, ifname)
        self.frames: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._began = time.monotonic()

    def __enter__(self) -> Sniffer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            way = "out" if addr[2] == socket.PACKET_OUTGOING else "in "
            stamp = time.monotonic() - self._began
            self.frames.append(f"{stamp:6.3f} {way} {describe(frame)}")


async def main() -> None:
    neutron = neutron_client(NEUTRON)
    host = hostname()
    spaces = Namespaces(PREFIX)
    binders = await load(BindingConfig())
    ovs = binders.for_vif_type("ovs")
    net = await neutron.create("networks", {"name": PREFIX + secrets.token_hex(3)})
    made: list[str] = []
    vifs: list[Any] = []
    report: dict[str, Any] = {}
    netlink: Netlink | None = None
    binder: MacvlanBinder | None = None
    containers: list[Any] = []
    try:
        cidr = f"10.251.{secrets.randbelow(250)}.0/24"
        await neutron.create("subnets", {"network_id": net["id"], "ip_version": 4, "cidr": cidr})

        async def bound(name: str) -> Port:
            raw = await neutron.create(
                "ports", {"network_id": net["id"], "name": PREFIX + name, "binding:host_id": host}
            )
            made.append(raw["id"])
            return Port.from_neutron(raw)

        vm_port, peer = await bound("vm"), await bound("peer")
        vm_ns, peer_ns = spaces.new(), spaces.new()
        for port, ns in ((vm_port, vm_ns), (peer, peer_ns)):
            vifs.append(await plug_into(ovs, port, ns, int(net["mtu"])))
        vm_nic, peer_nic = vifs[0].container_ifname, vifs[1].container_ifname
        netlink = Netlink(netns=vm_ns)
        binder = MacvlanBinder(neutron, netlink, VmNic(neutron, netlink, vm_nic), State.in_memory())
        mark = Mark("", vm_port.id)
        for i in range(2):
            body = desired.create_body(net["id"], [], mark, PREFIX + f"c{i}")
            del body["fixed_ips"]
            raw = await neutron.create("ports", body)
            made.append(raw["id"])
            port = Port.from_neutron(raw)
            vif = port.vif(secrets.token_hex(32), int(net["mtu"]))
            if i == 1:  # c2: a MAC of its own on the macvlan and in the pair, not its port's
                own = secrets.token_hex(4)
                mac = "02:15:" + ":".join(own[k : k + 2] for k in range(0, 8, 2))
                vif = dataclasses.replace(vif, mac_address=mac)
            await binder.plug(vif, 15.0)
            ns = spaces.new()
            await move_link(vif.container_ifname, ns, vm_ns)
            await configure(ns, vif.container_ifname, port.ips[0], 24)
            containers.append((ns, port, vif))
        (c1_ns, c1, c1_vif), (_, c2, _) = containers
        await asyncio.sleep(2)
        report["addresses"] = {
            "vm": [vm_port.mac_address, vm_port.ips[0]],
            "peer": [peer.mac_address, peer.ips[0]],
            "c1": [c1.mac_address, c1.ips[0]],
            "c2": [c2.mac_address, c2.ips[0]],
        }
        report["lsp c1 before"] = lsp(c1.id)
        report["lsp vm"] = lsp(vm_port.id)
        report["binding c1 before"] = binding(c1.id)
        switch = f"neutron-{net['id']}"
        report["flows c1 before"] = flows_of(switch, c1.mac_address, c1.ips[0])
        report["ping vm->peer"] = ping(vm_ns, peer.ips[0]).returncode
        with (
            Sniffer(vm_ns, vm_nic) as on_vm,
            Sniffer(peer_ns, peer_nic) as on_peer,
            Sniffer(c1_ns, c1_vif.container_ifname) as on_c1,
        ):
            out = ping(c1_ns, peer.ips[0], count=5)
            await asyncio.sleep(0.5)
        report["ping c1->peer"] = out.returncode
        report["ping c1->peer stdout"] = out.stdout
        report["frames on c1"] = on_c1.frames
        report["frames on VM NIC"] = on_vm.frames
        report["frames on peer NIC"] = on_peer.frames
        report["binding c1 after"] = binding(c1.id)
        report["flows c1 after"] = flows_of(switch, c1.mac_address, c1.ips[0])
        keys = {"c1": tunnel_key(c1.id), "vm": tunnel_key(vm_port.id)}
        report["tunnel keys"] = keys
        report["openflow c1 (used)"] = openflow(c1.mac_address, keys["c1"])
        reply = (
            f'inport == "{peer.id}" && eth.src == {peer.mac_address} && '
            f"eth.dst == {c1.mac_address} && ip4.src == {peer.ips[0]} && "
            f"ip4.dst == {c1.ips[0]} && ip.ttl == 64 && icmp4.type == 0"
        )
        request = (
            f'inport == "{vm_port.id}" && eth.src == {c1.mac_address} && '
            f"eth.dst == {peer.mac_address} && ip4.src == {c1.ips[0]} && "
            f"ip4.dst == {peer.ips[0]} && ip.ttl == 64 && icmp4.type == 8"
        )
        for label, flow in (("echo request c1->peer", request), ("echo reply peer->c1", reply)):
            report[f"ovn-trace {label}"] = subprocess.run(
                ["ovn-trace", f"--db=tcp:127.0.0.1:{SB_PORT}", "--summary", switch, flow],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
        report["c2 macvlan MAC (its port's is another)"] = containers[1][2].mac_address
        report["ping peer->c2"] = ping(peer_ns, c2.ips[0]).returncode
        report["ping c2->peer"] = ping(containers[1][0], peer.ips[0]).returncode
        report["lsp vm after"] = lsp(vm_port.id)
        report["ping c1->peer again"] = ping(c1_ns, peer.ips[0]).returncode
    finally:
        print(json.dumps(report, indent=1))
        if binder is not None:
            for ns, _, vif in containers:
                try:
                    await move_link(vif.container_ifname, vm_ns, ns)
                    await binder.unplug(vif)
                except Exception as exc:  # diagnostics: clean up what can be
                    print("cleanup:", exc, file=sys.stderr)
        if netlink is not None:
            await netlink.close()
        for vif in vifs:
            await ovs.unplug(vif)
        for port_id in made:
            await neutron.delete("ports", port_id)
        await neutron.delete("networks", net["id"])
        await binders.close()
        spaces.remove_all()


if __name__ == "__main__":
    asyncio.run(main())
