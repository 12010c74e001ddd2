"""The protocol models against every request dockerd 20.10 was seen sending, and their answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from kuryr.plugin import protocol as p
from kuryr.plugin.server import ROUTES
from tests.fuzz_requests import CAPTURE

RECORDS = [json.loads(line) for line in CAPTURE.read_text().splitlines()]


def test_capture_is_complete() -> None:
    assert len(RECORDS) == 488


@pytest.mark.parametrize("record", RECORDS, ids=[f"{i}{r['path']}" for i, r in enumerate(RECORDS)])
def test_every_captured_request_validates(record: dict[str, Any]) -> None:
    route = ROUTES[record["path"]]
    if route.request is None:
        assert record["req"] is None
        return
    parsed = route.request.model_validate(record["req"])
    # Nothing dockerd sent is lost or renamed: what the model read is a subset of the wire body.
    assert _is_subset(parsed.model_dump(by_alias=True, exclude_unset=True), record["req"])


def _is_subset(read: Any, sent: Any) -> bool:
    if isinstance(read, dict):
        return isinstance(sent, dict) and all(
            k in sent and _is_subset(v, sent[k]) for k, v in read.items()
        )
    if isinstance(read, list):
        return isinstance(sent, list) and all(map(_is_subset, read, sent))
    return bool(read == sent)


RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "/NetworkDriver.Join": p.JoinResponse,
    "/NetworkDriver.EndpointOperInfo": p.EndpointOperInfoResponse,
    "/IpamDriver.RequestPool": p.RequestPoolResponse,
    "/IpamDriver.RequestAddress": p.RequestAddressResponse,
    "/NetworkDriver.GetCapabilities": p.CapabilitiesResponse,
    "/IpamDriver.GetCapabilities": p.IpamCapabilitiesResponse,
    "/IpamDriver.GetDefaultAddressSpaces": p.AddressSpacesResponse,
    "/Plugin.Activate": p.ActivateResponse,
}
# Only the answers dockerd took as success (the capture also holds injected failures).
ANSWERS = [r for r in RECORDS if r["path"] in RESPONSE_MODELS and "Err" not in r["resp"]]


@pytest.mark.parametrize("record", ANSWERS, ids=[r["path"] for r in ANSWERS])
def test_answers_dockerd_accepted_round_trip_through_wire(record: dict[str, Any]) -> None:
    model = RESPONSE_MODELS[record["path"]].model_validate(record["resp"])
    assert model.wire() == record["resp"]  # type: ignore[attr-defined]


def test_create_endpoint_answer_fills_only_empty_fields() -> None:
    answer = p.CreateEndpointResponse(
        interface=p.EndpointInterface(address="", address_ipv6="", mac_address="fa:16:3e:01:02:03")
    )
    assert answer.wire() == {"Interface": {"MacAddress": "fa:16:3e:01:02:03"}}
    assert p.CreateEndpointResponse().wire() == {}
    assert p.CreateEndpointResponse(interface=p.EndpointInterface()).wire() == {}


def test_join_answer_leaves_unset_fields_out() -> None:
    answer = p.JoinResponse(
        interface_name=p.InterfaceName(src_name="tap1", dst_prefix="eth"),
        gateway_ipv6="fd00::1",
        static_routes=[p.StaticRoute(destination="10.9.0.0/16", route_type=0, next_hop="10.0.0.9")],
        disable_gateway_service=True,
    )
    assert answer.wire() == {
        "InterfaceName": {"SrcName": "tap1", "DstPrefix": "eth"},
        "GatewayIPv6": "fd00::1",
        "StaticRoutes": [{"Destination": "10.9.0.0/16", "RouteType": 0, "NextHop": "10.0.0.9"}],
        "DisableGatewayService": True,
    }


def test_null_collections_from_dockerd_read_as_empty() -> None:
    net = "a" * 64
    req = p.CreateNetworkRequest.model_validate(
        {"NetworkID": net, "Options": None, "IPv4Data": None, "IPv6Data": None}
    )
    assert (req.options, req.ipv4_data, req.ipv6_data) == ({}, [], [])
    ep = p.CreateEndpointRequest.model_validate(
        {"NetworkID": net, "EndpointID": net, "Options": None}
    )
    assert ep.options == {}


def test_gateway_request_is_recognised() -> None:
    gateway = next(
        r["req"]
        for r in RECORDS
        if r["path"] == "/IpamDriver.RequestAddress" and r["req"]["Options"]
    )
    assert p.RequestAddressRequest.model_validate(gateway).is_gateway
    plain = {**gateway, "Options": {}}
    assert not p.RequestAddressRequest.model_validate(plain).is_gateway


def test_generic_options_must_be_an_object() -> None:
    body = {"NetworkID": "a" * 64, "Options": {p.OPT_GENERIC: {"neutron.net.name": "x", "n": 1}}}
    assert p.CreateNetworkRequest.model_validate(body).generic_options == {
        "neutron.net.name": "x",
        "n": "1",
    }
    with pytest.raises(ValidationError, match="must be an object"):
        p.CreateNetworkRequest.model_validate({**body, "Options": {p.OPT_GENERIC: "x=y"}})
