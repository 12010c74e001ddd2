"""Gratuitous ARP for a nested ``macvlan`` container's address, sent on the VM's NIC.

ML2/OVN makes a port whose address is in another port's ``allowed_address_pairs`` a
*virtual* port of that port. OVN delivers nothing to a virtual port until it is bound, and
it binds one (``bind_vport``) only when its parent sends an ARP reply from the virtual
address or a gratuitous ARP request (sender = target = the virtual address), never on an
ordinary request. A container that speaks first (a ping out) sends an ordinary request, and
the answer, addressed to its MAC, is dropped. So the macvlan binder announces every address
it plugs: a gratuitous ARP request with the container's MAC, sent raw on the NIC. Neutron's
change (the pair, the virtual port) reaches ovn-controller some time after the PUT returns,
so the announcement is repeated a few times over a few seconds, in the background.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Iterable

LOG = logging.getLogger(__name__)

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
BROADCAST = b"\xff" * 6
# Seconds before each announcement: at once, then while Neutron's change travels to OVN.
DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0)


def frame(mac: str, address: str) -> bytes:
    """A broadcast gratuitous ARP request: sender and target are ``address`` at ``mac``."""
    hw = bytes.fromhex(mac.replace(":", ""))
    ip = ipaddress.IPv4Address(address).packed
    ethernet = BROADCAST + hw + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1) + hw + ip + b"\x00" * 6 + ip
    return ethernet + arp


def send(ifname: str, frames: Iterable[bytes]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((ifname, 0))
        for data in frames:
            sock.send(data)


class Announcer:
    """Announcements under way, so they can be cancelled when the daemon stops."""

    def __init__(self, delays: Iterable[float] = DELAYS) -> None:
        self._delays = tuple(delays)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, ifname: str, mac: str, addresses: Iterable[str]) -> None:
        v4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
        if not v4:
            return
        task = asyncio.create_task(self._announce(ifname, [frame(mac, a) for a in v4]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, ifname: str, frames: list[bytes]) -> None:
        for delay in self._delays:
            await asyncio.sleep(delay)
            try:
                send(ifname, frames)
            except OSError as e:
                LOG.warning("gratuitous ARP on %s: %s", ifname, e)
                return

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
