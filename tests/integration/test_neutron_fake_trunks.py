"""The in-memory Neutron's trunks (tests/fakes/neutron_trunks.py) against the real trunk
plugin with its OVN driver: one scenario, run on both, gives the same shapes, effects on the
subports and refusals. Needs ``trunk`` in the stack's service_plugins (kuryr.stack.neutron)."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

import pytest

from kuryr.backends.neutron_api import NeutronApi, Resource
from tests.conftest import StackFacts
from tests.fakes.neutron import FakeNeutron
from tests.integration.domain_helpers import neutron_client
from tests.integration.neutron_shapes import Shapes, refusal, shape

pytestmark = pytest.mark.stack

PREFIX = "wt15-trunkcmp-"


def sub(port_id: str, seg: Any, kind: str = "vlan") -> dict[str, Any]:
    return {"port_id": port_id, "segmentation_type": kind, "segmentation_id": seg}


def subport_view(port: Resource) -> tuple[Any, ...]:
    profile = port["binding:profile"]
    return (
        port["device_owner"],
        port["binding:vif_type"],
        port["status"],
        sorted(profile),
        profile.get("tag"),
    )


async def free_cidr(neutron: NeutronApi) -> str:
    used = [ipaddress.ip_network(s["cidr"]) for s in await neutron.query("subnets")]
    return str(
        next(
            n
            for n in ipaddress.ip_network("10.198.0.0/16").subnets(new_prefix=28)
            if not any(n.overlaps(u) for u in used)
        )
    )


async def scenario(neutron: NeutronApi, host: str, cidr: str) -> Shapes:
    seen: Shapes = []
    name = PREFIX + secrets.token_hex(4)
    net = await neutron.create("networks", {"name": name})
    trunks: list[str] = []
    try:
        await neutron.create("subnets", {"network_id": net["id"], "ip_version": 4, "cidr": cidr})
        on_net = {"network_id": net["id"], "name": name}
        parent = await neutron.create("ports", {**on_net, "binding:host_id": host})
        trunk = await neutron.create("trunks", {"port_id": parent["id"], "name": name})
        trunks.append(trunk["id"])
        seen.append(("trunk", shape(trunk), trunk["sub_ports"]))
        seen.append(
            ("parent twice", await refusal(neutron.create("trunks", {"port_id": parent["id"]})))
        )
        port = await neutron.create("ports", {**on_net, "device_owner": "compute:kuryr"})
        answer = await neutron.add_subports(trunk["id"], [sub(port["id"], 5)])
        seen.append(("added", sorted(answer), answer["sub_ports"] == [sub(port["id"], 5)]))
        after = await neutron.show("ports", port["id"]) or {}
        seen.append(
            (
                "a subport",
                subport_view(after),
                after["binding:profile"].get("parent_name") == parent["id"],
            )
        )
        shown = await neutron.show("ports", parent["id"]) or {}
        details = shown.get("trunk_details", {})
        seen.append(
            ("trunk_details", sorted(details), [sorted(s) for s in details.get("sub_ports", [])])
        )
        found = await neutron.query("trunks", {"port_id": parent["id"]})
        seen.append(("trunk by parent", [t["id"] == trunk["id"] for t in found]))
        other = await neutron.create("ports", on_net)
        used = await neutron.create("ports", {**on_net, "device_id": name})
        for label, subports in (
            ("duplicate id", [sub(other["id"], 5)]),
            ("subport twice", [sub(port["id"], 6)]),
            ("parent as subport", [sub(parent["id"], 6)]),
            ("port with a device_id", [sub(used["id"], 6)]),
            ("id 4095", [sub(other["id"], 4095)]),
            ("id 0", [sub(other["id"], 0)]),
            ("vxlan", [sub(other["id"], 6, "vxlan")]),
            ("no segmentation", [{"port_id": other["id"]}]),
            ("one port twice", [sub(other["id"], 6), sub(other["id"], 7)]),
            ("one bad of two", [sub(other["id"], 6), sub(used["id"], 7)]),
        ):
            seen.append((label, await refusal(neutron.add_subports(trunk["id"], subports))))
        untouched = await neutron.show("ports", other["id"]) or {}
        seen.append(("all or none", untouched["device_owner"], untouched["binding:vif_type"]))
        seen.append(("delete a subport", await refusal(neutron.delete("ports", port["id"]))))
        seen.append(("delete a parent", await refusal(neutron.delete("ports", parent["id"]))))
        bound = await neutron.create(
            "ports", {**on_net, "device_owner": "compute:kuryr", "binding:host_id": host}
        )
        await neutron.add_subports(trunk["id"], [sub(bound["id"], 7)])
        bound_after = await neutron.show("ports", bound["id"]) or {}
        seen.append(
            ("a bound subport", subport_view(bound_after), bound_after["binding:host_id"] == host)
        )
        await neutron.remove_subports(trunk["id"], [port["id"]])
        removed = await neutron.show("ports", port["id"]) or {}
        seen.append(("removed", subport_view(removed)))
        seen.append(
            ("removed twice", await refusal(neutron.remove_subports(trunk["id"], [port["id"]])))
        )
        seen.append(("delete once removed", await neutron.delete("ports", port["id"])))
        await neutron.delete("trunks", trunk["id"])
        trunks.remove(trunk["id"])
        freed = await neutron.show("ports", bound["id"]) or {}
        seen.append(("trunk deleted", subport_view(freed)))
        missing = "00000000-0000-4000-8000-000000000000"
        seen.append(
            ("no such trunk", await refusal(neutron.add_subports(missing, [sub(other["id"], 6)])))
        )
    finally:
        for trunk_id in trunks:
            await neutron.delete("trunks", trunk_id)
        for port in await neutron.query("ports", {"network_id": net["id"]}):
            if not port["device_owner"].startswith("network:"):
                await neutron.delete("ports", port["id"])
        await neutron.delete("networks", net["id"])
    return seen


async def test_the_fake_trunks_answer_as_the_real_ones(stack: StackFacts) -> None:
    real = neutron_client(stack.neutron_url)
    cidr = await free_cidr(real)
    expected = await scenario(real, stack.chassis_hostname, cidr)
    found = await scenario(FakeNeutron(post_tags=True), stack.chassis_hostname, cidr)
    differences = [(e, f) for e, f in zip(expected, found, strict=True) if e != f]
    assert differences == [], "\n".join(f"real {e}\nfake {f}" for e, f in differences)
