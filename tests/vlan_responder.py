"""A userspace stand-in for a container on a VLAN subinterface, for a kernel without 802.1Q
(this machine's): on one link of a network namespace, it answers ARP requests and ICMP echo
requests for one IPv4 address that arrive tagged with one VLAN id, from one MAC, with
tagged frames, as a container behind ``<nic>.<vlan id>`` would. It records the VLAN ids of
the frames it saw."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading
from collections import Counter
from pathlib import Path

ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
_AUXDATA = struct.Struct("IIIHHHH")
_CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _LIBC.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def packet_socket(netns: str, ifname: str) -> socket.socket:
    """A raw packet socket on ``ifname`` of namespace ``netns`` (it stays there)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(Path("/run/netns") / netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((ifname, 0))
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.settimeout(0.2)
    return sock


def _mac(text: str) -> bytes:
    return bytes(int(b, 16) for b in text.split(":"))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class VlanResponder:
    def __init__(self, netns: str, ifname: str, vlan: int, ip: str, mac: str) -> None:
        self._sock = packet_socket(netns, ifname)
        self.vlan = vlan
        self.ip = socket.inet_aton(ip)
        self.mac = _mac(mac)
        self.seen: Counter[int] = Counter()  # VLAN id (0: untagged) -> frames
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> VlanResponder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancdata, _flags, _addr = self._sock.recvmsg(65535, socket.CMSG_SPACE(32))
            except TimeoutError:
                continue
            except OSError:
                return
            vlan, frame = self._untag(data, ancdata)
            self.seen[vlan] += 1
            if vlan != self.vlan:
                continue
            answer = self._answer(frame)
            if answer is not None:
                self._sock.send(answer)
                self.answered += 1

    @staticmethod
    def _untag(data: bytes, ancdata: list[tuple[int, int, bytes]]) -> tuple[int, bytes]:
        """The VLAN id (from the kernel's auxdata, or in the frame) and the untagged frame."""
        for level, kind, raw in ancdata:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(raw) >= _AUXDATA.size:
                status, _, _, _, _, tci, _ = _AUXDATA.unpack(raw[: _AUXDATA.size])
                if status & TP_STATUS_VLAN_VALID:
                    return tci & 0x0FFF, data
        if len(data) >= 18 and struct.unpack("!H", data[12:14])[0] == ETH_P_8021Q:
            tci = struct.unpack("!H", data[14:16])[0]
            return tci & 0x0FFF, data[:12] + data[16:]
        return 0, data

    def _tagged(self, dst: bytes, ethertype: int, payload: bytes) -> bytes:
        return dst + self.mac + struct.pack("!HHH", ETH_P_8021Q, self.vlan, ethertype) + payload

    def _answer(self, frame: bytes) -> bytes | None:
        if len(frame) < 14:
            return None
        src = frame[6:12]
        ethertype = struct.unpack("!H", frame[12:14])[0]
        body = frame[14:]
        if ethertype == ETH_P_ARP and len(body) >= 28:
            op = struct.unpack("!H", body[6:8])[0]
            sender_mac, sender_ip, target_ip = body[8:14], body[14:18], body[24:28]
            if op != 1 or target_ip != self.ip:
                return None
            reply = body[:6] + struct.pack("!H", 2) + self.mac + self.ip + sender_mac + sender_ip
            return self._tagged(src, ETH_P_ARP, reply)
        if ethertype == ETH_P_IP and len(body) >= 20:
            ihl = (body[0] & 0x0F) * 4
            if body[9] != 1 or body[16:20] != self.ip or body[ihl] != 8:
                return None
            total = struct.unpack("!H", body[2:4])[0]
            icmp = bytearray(body[ihl:total])
            icmp[0] = 0
            icmp[2:4] = b"\0\0"
            icmp[2:4] = struct.pack("!H", _checksum(bytes(icmp)))
            header = bytearray(body[:ihl])
            header[12:16], header[16:20] = body[16:20], body[12:16]
            header[8] = 64
            header[10:12] = b"\0\0"
            header[10:12] = struct.pack("!H", _checksum(bytes(header)))
            return self._tagged(src, ETH_P_IP, bytes(header) + bytes(icmp))
        return None
