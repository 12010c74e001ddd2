"""Input that Neutron would refuse is refused before it reaches Neutron, naming the field.

Each class here was found by tests/fuzz/test_fuzz_live.py as a Neutron 4xx (a 502) or
a 500: Kuryr passed the value on. Refused here, it is a 400 that reaches no domain code.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kuryr.domain.security_groups import exposed_ports
from kuryr.errors import InvalidRequest
from kuryr.plugin import protocol as p
from kuryr.plugin.server import condense

NET = "0b707c5c251527c195db82fd7df44a27d6926b90bacf7ae3a232b450c6b8e9da"


def create_network(ipv4: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    data = [{"AddressSpace": "LocalDefault", "Pool": "10.1.2.0/24", **(ipv4 or {})}]
    return {"NetworkID": NET, "Options": options, "IPv4Data": data, "IPv6Data": []}


def refusal(model: type[p.BaseModel], body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return condense(caught.value)


@pytest.mark.parametrize("pool", ["10.1.2.3/24", "fd00::1/64", "10.1.2.0/33", "x"])
def test_a_pool_must_be_a_network_cidr(pool: str) -> None:
    body = {"AddressSpace": "no_address_space", "Pool": pool, "SubPool": "", "V6": False}
    assert refusal(p.RequestPoolRequest, body).startswith("Pool: ")
    subpool = {**body, "Pool": "10.1.0.0/16", "SubPool": pool}
    assert refusal(p.RequestPoolRequest, subpool).startswith("SubPool: ")


def test_a_network_cidr_is_a_pool() -> None:
    body = {"Pool": "10.1.0.0/16", "SubPool": "10.1.2.0/24"}
    assert p.RequestPoolRequest.model_validate(body).sub_pool == "10.1.2.0/24"


@pytest.mark.parametrize(
    ("gateway", "why"),
    [
        ("10.1.3.1/24", "is not in pool"),
        ("fd00::1/64", "is not in pool"),
        ("10.1.2.0/24", "is the network address"),
    ],
)
def test_a_gateway_off_its_pool_is_refused(gateway: str, why: str) -> None:
    message = refusal(p.CreateNetworkRequest, create_network({"Gateway": gateway}))
    assert message.startswith("IPv4Data.0: ") and why in message


@pytest.mark.parametrize(
    ("pool", "gateway"),
    [("10.1.2.0/24", "10.1.2.1/24"), ("10.1.2.0/24", "10.1.2.254"), ("10.1.2.0/31", "10.1.2.0")],
)
def test_a_gateway_on_its_pool_is_taken(pool: str, gateway: str) -> None:
    body = create_network({"Pool": pool, "Gateway": gateway})
    assert p.CreateNetworkRequest.model_validate(body).ipv4_data[0].gateway == gateway


@pytest.mark.parametrize("aux", [{"host": "not-an-ip"}, {"host": ""}, {"host": "10.1.2.300"}])
def test_aux_addresses_must_be_addresses(aux: dict[str, str]) -> None:
    message = refusal(p.CreateNetworkRequest, create_network({"AuxAddresses": aux}))
    assert message.startswith("IPv4Data.0.AuxAddresses: ")


@pytest.mark.parametrize("mtu", [-1, 67, 65536, "abc", "1e3", True, [1400], "14 00"])
def test_an_mtu_out_of_range_is_refused(mtu: Any) -> None:
    body = create_network(**{p.OPT_MTU: mtu})
    assert f"{p.OPT_MTU} must be an integer from 68 to 65535" in refusal(
        p.CreateNetworkRequest, body
    )


@pytest.mark.parametrize("mtu", [68, "1400", 1442, 9000, "", 0, None])
def test_an_mtu_in_range_or_unset_is_taken(mtu: Any) -> None:
    assert p.CreateNetworkRequest.model_validate(create_network(**{p.OPT_MTU: mtu}))


@pytest.mark.parametrize("mac", ["ff:ff:ff:ff:ff:ff", "FF:FF:FF:FF:FF:FF", "00:00:00:00:00:00"])
def test_a_mac_neutron_refuses_is_refused(mac: str) -> None:
    interface = {"Address": "10.1.2.5/24", "MacAddress": mac}
    body = {"NetworkID": NET, "EndpointID": NET, "Interface": interface}
    assert "cannot be an interface's MAC address" in refusal(p.CreateEndpointRequest, body)
    request = {"PoolID": "pool", "Options": {p.OPT_MAC_ADDRESS: mac}}
    message = refusal(p.RequestAddressRequest, request)
    assert message.startswith(f"Options: {p.OPT_MAC_ADDRESS} '{mac}': ")


@pytest.mark.parametrize("mac", ["0242.ac11.0002", "02-42-ac-11-00-02", "02:42:ac:11:00"])
def test_a_mac_option_must_be_a_mac(mac: str) -> None:
    request = {"PoolID": "pool", "Options": {p.OPT_MAC_ADDRESS: mac}}
    assert "must be a MAC address" in refusal(p.RequestAddressRequest, request)


def test_a_unicast_mac_option_is_taken() -> None:
    request = {"PoolID": "pool", "Options": {p.OPT_MAC_ADDRESS: "02:42:ac:11:00:02"}}
    assert p.RequestAddressRequest.model_validate(request).options


@pytest.mark.parametrize("port", [True, False, 0, 65536, "80", 80.0])
def test_an_exposed_port_must_be_a_port_number(port: Any) -> None:
    options = {p.OPT_EXPOSED_PORTS: [{"Proto": 6, "Port": port}]}
    with pytest.raises(InvalidRequest, match="is not a port number"):
        exposed_ports(options)


@pytest.mark.parametrize("pool", ["0.0.0.0/0", "10.0.0.0/7"])
def test_an_ipv4_pool_wider_than_neutron_makes_is_refused(pool: str) -> None:
    body = {"AddressSpace": "no_address_space", "Pool": pool}
    assert "the widest IPv4 pool Neutron makes" in refusal(p.RequestPoolRequest, body)


@pytest.mark.parametrize("pool", ["10.0.0.0/8", "fd00:1::/48"])
def test_a_pool_neutron_makes_is_taken(pool: str) -> None:
    assert p.RequestPoolRequest.model_validate({"Pool": pool}).pool == pool
