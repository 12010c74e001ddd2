"""The gratuitous ARP a nested macvlan binder sends for a container's address."""

from __future__ import annotations

from kuryr.backends.binding import garp


def test_a_gratuitous_arp_request_names_the_address_as_sender_and_target() -> None:
    data = garp.frame("fa:16:3e:01:02:03", "10.99.0.7")
    mac, ip = bytes.fromhex("fa163e010203"), bytes([10, 99, 0, 7])
    assert data[:6] == b"\xff" * 6  # broadcast
    assert data[6:12] == mac
    assert data[12:14] == b"\x08\x06"  # ARP
    assert data[14:22] == b"\x00\x01\x08\x00\x06\x04\x00\x01"  # Ethernet/IPv4, request
    assert data[22:28] == mac and data[28:32] == ip  # sender
    assert data[32:38] == b"\x00" * 6 and data[38:42] == ip  # target
    assert len(data) == 42
