"""A link's TX checksum offload, read and set with the ethtool ioctl (no ``ethtool`` fork).

OVS 3.1's userspace datapath drops a packet it must tunnel (geneve to another chassis) when
the packet still carries checksum offload flags, as TCP and UDP from a default veth do; ICMP
passes. With TX checksum offload off on the container's end the kernel fills the checksum in
itself and such packets cross hosts. Switching it off also switches off TSO, which depends
on it. The ioctl acts in the caller's network namespace."""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct

from kuryr.errors import BackendError

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17
_IFNAMSIZ = 16
# struct ifreq is 40 bytes on 64-bit Linux: the name, then a union holding ifr_data.
_IFREQ = f"{_IFNAMSIZ}sP{40 - _IFNAMSIZ - struct.calcsize('P')}x"


def _ethtool_value(ifname: str, command: int, data: int = 0) -> int:
    """Issue one ethtool_value command on ``ifname``; the value the kernel left in it."""
    value = ctypes.create_string_buffer(struct.pack("II", command, data))
    request = struct.pack(_IFREQ, ifname.encode(), ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)
        except OSError as e:
            raise BackendError(f"ethtool on {ifname}: {e.strerror or e}") from e
    return int(struct.unpack("II", value.raw[:8])[1])


def tx_checksum(ifname: str) -> bool:
    """Whether TX checksum offload is on for ``ifname``."""
    return _ethtool_value(ifname, ETHTOOL_GTXCSUM) != 0


def set_tx_checksum(ifname: str, on: bool) -> None:
    _ethtool_value(ifname, ETHTOOL_STXCSUM, 1 if on else 0)
