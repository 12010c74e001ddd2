"""Announcing an address on a link: a gratuitous ARP for IPv4, an unsolicited neighbour
advertisement for IPv6, sent as raw frames (an ``AF_PACKET`` socket) with a source MAC of
the caller's choosing, in this namespace or a named one (``/run/netns/<netns>``).

Nested ``macvlan`` mode needs it (kuryr.backends.binding.macvlan): ML2/OVN makes a
container's unbound port, whose address is in the VM port's allowed address pairs, an OVN
``virtual`` port of the VM's port, and OVN binds a virtual port only when its address is
announced through its parent: an ARP request with sender and target both the address, or an
ARP reply (IPv6: a neighbour advertisement) from it. Until then frames for the container's
MAC have nowhere to go.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import os
import socket
import struct
import threading

_ETH_P_ARP = 0x0806
_ETH_P_IPV6 = 0x86DD
_BROADCAST = b"\xff" * 6
_ALL_NODES_MAC = bytes.fromhex("333300000001")
_ALL_NODES = ipaddress.IPv6Address("ff02::1").packed
_CLONE_NEWNET = 0x40000000
_ICMPV6 = 58
_NEIGHBOR_ADVERTISEMENT = 136
_OVERRIDE = 0x20000000
_TARGET_LINK_ADDRESS = 2


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def frames(mac: str, addresses: tuple[str, ...] | list[str]) -> list[bytes]:
    """One announcement per address, from ``mac``."""
    return [
        _garp(mac, ip) if ipaddress.ip_address(ip).version == 4 else _unsolicited_na(mac, ip)
        for ip in addresses
    ]


def _garp(mac: str, ip: str) -> bytes:
    """An ARP request for ``ip`` from ``ip`` itself, broadcast (RFC 5227's announcement)."""
    sender = _mac(mac)
    address = ipaddress.IPv4Address(ip).packed
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sender + address + b"\0" * 6 + address
    return _BROADCAST + sender + struct.pack("!H", _ETH_P_ARP) + arp


def _unsolicited_na(mac: str, ip: str) -> bytes:
    """A neighbour advertisement of ``ip`` to all nodes, override set, with the MAC as its
    target link-layer address (RFC 4861 7.2.6)."""
    sender = _mac(mac)
    source = ipaddress.IPv6Address(ip).packed
    body = struct.pack("!I", _OVERRIDE) + source + bytes([_TARGET_LINK_ADDRESS, 1]) + sender
    icmp = struct.pack("!BBH", _NEIGHBOR_ADVERTISEMENT, 0, 0) + body
    pseudo = source + _ALL_NODES + struct.pack("!I3xB", len(icmp), _ICMPV6)
    checksum = _checksum(pseudo + icmp)
    icmp = icmp[:2] + struct.pack("!H", checksum) + icmp[4:]
    header = struct.pack("!IHBB", 6 << 28, len(icmp), _ICMPV6, 255) + source + _ALL_NODES
    return _ALL_NODES_MAC + sender + struct.pack("!H", _ETH_P_IPV6) + header + icmp


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


async def send(ifname: str, sent: list[bytes], netns: str | None = None) -> None:
    """Send the frames on ``ifname`` (of namespace ``netns``; None: this one). Another
    namespace is entered by a thread of its own, which ends with the send: no pooled thread
    is ever left in it."""
    if netns is None:
        await asyncio.to_thread(_send, ifname, sent, None)
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)

    def run() -> None:
        try:
            _send(ifname, sent, netns)
        except BaseException as exc:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, exc)
        else:
            loop.call_soon_threadsafe(settle, None)

    threading.Thread(target=run, name=f"announce-{ifname}", daemon=True).start()
    await done


def _send(ifname: str, sent: list[bytes], netns: str | None) -> None:
    with _packet_socket(ifname, netns) as sock:
        for frame in sent:
            sock.send(frame)


def _packet_socket(ifname: str, netns: str | None) -> socket.socket:
    """A raw socket on ``ifname``, opened in ``netns`` (setns moves only the calling thread;
    the socket stays in the namespace it was opened in)."""
    if netns is None:
        return _bound(ifname)
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(target, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"cannot enter network namespace {netns}")
        try:
            return _bound(ifname)
        finally:
            libc.setns(home, _CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(home)


def _bound(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        sock.bind((ifname, 0))
    except OSError:
        sock.close()
        raise
    return sock
