"""Pure helpers of the domain: allocation pools, gateways, subnet containment."""

from __future__ import annotations

import ipaddress

from kuryr.backends.model import allocation_pools, first_host, subnet_of


def net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr)


def test_first_host_is_dockers_default_gateway() -> None:
    assert first_host(net("10.10.3.0/24")) == "10.10.3.1"
    assert first_host(net("fd00:22::/64")) == "fd00:22::1"


def test_pools_skip_gateway_and_aux_addresses() -> None:
    pools = allocation_pools(net("10.21.0.0/16"), {"10.21.0.254", "10.21.0.7"})
    assert pools == [
        {"start": "10.21.0.1", "end": "10.21.0.6"},
        {"start": "10.21.0.8", "end": "10.21.0.253"},
        {"start": "10.21.0.255", "end": "10.21.255.254"},
    ]


def test_excluded_address_at_the_range_edge() -> None:
    pools = allocation_pools(net("10.0.0.0/29"), {"10.0.0.1"})
    assert pools == [{"start": "10.0.0.2", "end": "10.0.0.6"}]


def test_ipv6_pool_skips_the_router_anycast_address() -> None:
    pools = allocation_pools(net("fd00::/126"), {"fd00::1"})
    assert pools == [{"start": "fd00::2", "end": "fd00::3"}]


def test_subnet_of_across_versions_is_false() -> None:
    assert subnet_of(net("10.10.1.0/24"), net("10.10.0.0/16"))
    assert not subnet_of(net("10.11.1.0/24"), net("10.10.0.0/16"))
    assert not subnet_of(net("fd00::/64"), net("10.10.0.0/16"))
