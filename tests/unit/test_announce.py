"""The announcement frames nested macvlan mode sends for a container's address (pure)."""

from __future__ import annotations

import ipaddress
import struct

from kuryr.backends import announce

MAC = "fa:16:3e:12:34:56"


def test_a_gratuitous_arp_asks_for_its_own_address_from_the_mac() -> None:
    [frame] = announce.frames(MAC, ["10.1.2.3"])
    dst, src, ethertype = frame[0:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
    assert (dst, src.hex(":"), ethertype) == (b"\xff" * 6, MAC, 0x0806)
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
    assert sha.hex(":") == MAC
    assert spa == tpa == ipaddress.IPv4Address("10.1.2.3").packed


def test_an_unsolicited_neighbour_advertisement_is_valid_icmpv6() -> None:
    [frame] = announce.frames(MAC, ["fd00::15"])
    assert frame[0:6].hex(":") == "33:33:00:00:00:01"
    assert struct.unpack("!H", frame[12:14])[0] == 0x86DD
    ip6 = frame[14:54]
    length, next_header, hops = struct.unpack("!HBB", ip6[4:8])
    source, destination = ip6[8:24], ip6[24:40]
    icmp = frame[54:]
    assert (next_header, hops, length) == (58, 255, len(icmp))
    assert source == ipaddress.IPv6Address("fd00::15").packed
    assert destination == ipaddress.IPv6Address("ff02::1").packed
    kind, code = icmp[0], icmp[1]
    flags = struct.unpack("!I", icmp[4:8])[0]
    assert (kind, code, flags >> 29) == (136, 0, 0b001), "an advertisement, override only"
    assert icmp[8:24] == source, "its target is the address"
    assert icmp[24:26] == b"\x02\x01" and icmp[26:32].hex(":") == MAC
    pseudo = source + destination + struct.pack("!I3xB", len(icmp), 58)
    assert announce._checksum(pseudo + icmp) == 0, "the checksum verifies"


def test_one_frame_per_address_of_a_dual_stack_port() -> None:
    sent = announce.frames(MAC, ["10.1.2.3", "fd00::15"])
    assert [struct.unpack("!H", f[12:14])[0] for f in sent] == [0x0806, 0x86DD]
