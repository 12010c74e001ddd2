"""The stack's external network, as devstack makes it: the flat provider network ``public``
(172.24.4.0/24) on the OVS bridge ``br-ex``, where the host holds 172.24.4.1, and the router
``kuryr-router`` with its external gateway there.

The machine's chassis is a gateway chassis (``ovn-cms-options=enable-chassis-as-gw``) and
maps the physical network ``public`` to ``br-ex`` (``ovn-bridge-mappings``), so the router's
gateway port, and the SNAT of the subnets attached to the router, live on this machine.
Nothing routes beyond ``br-ex``: the host is the whole outside world.

On the host this adds only ``br-ex`` (a userspace OVS bridge, so its tap) and its address;
``down`` removes both. The bridge mapping and the gateway option stay in the stack's OVSDB,
and the network, its subnet and the router in Neutron's database: ``up`` finds them by name
and makes what is missing."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import urllib.error
from pathlib import Path
from typing import Any

from kuryr.stack import neutron_api, ovn, ovs, proc
from kuryr.stack.errors import StackError
from kuryr.stack.layout import Layout

BRIDGE = "br-ex"
PHYSNET = "public"
NETWORK = "public"
SUBNET = "public-subnet"
ROUTER = "kuryr-router"
CIDR = ipaddress.ip_network("172.24.4.0/24")
HOST_IP = "172.24.4.1"
# devstack's allocation pool: everything but the gateway, which is the host.
POOL = {"start": "172.24.4.2", "end": "172.24.4.254"}
GATEWAY_CHASSIS = "enable-chassis-as-gw"
# ovn-controller copies the option to the SB chassis, then Neutron schedules gateways on it;
# the router's gateway then answers on br-ex once northd and ovn-controller have its flows.
READY_TIMEOUT = 30.0

_API_ERRORS = (OSError, ValueError, KeyError, IndexError, urllib.error.URLError)


def ip(*args: str) -> str:
    return proc.run(External.name, ["ip", *args])


class External:
    name = "external"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    @property
    def log(self) -> Path:
        return self.layout.log("neutron-server")

    def start(self) -> None:
        self._bridge()
        if not proc.wait_for(gateway_chassis, READY_TIMEOUT, 0.2):
            raise StackError(
                self.name,
                f"the chassis is not a gateway chassis in the SB database ({GATEWAY_CHASSIS})",
                self.layout.log("ovn-controller"),
            )
        try:
            router = _ensure_router(_ensure_network())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise StackError(self.name, f"Neutron refused: {exc.code} {detail}", self.log) from exc
        except _API_ERRORS as exc:
            raise StackError(self.name, f"cannot reach Neutron: {exc}", self.log) from exc
        address = gateway_address(router)
        if address is None:
            raise StackError(self.name, f"{ROUTER} has no external address on {NETWORK}", self.log)
        if not proc.wait_for(lambda: _answers(address), READY_TIMEOUT, 0.5):
            raise StackError(
                self.name,
                f"{ROUTER}'s gateway {address} does not answer ping on {BRIDGE}",
                self.layout.log("ovn-controller"),
            )

    def _bridge(self) -> None:
        """br-ex on the userspace datapath with the host's address, mapped to ``public``.
        Idempotent; also gives back the address a restarted ovs-vswitchd dropped."""
        ovs.vsctl(
            "--may-exist",
            "add-br",
            BRIDGE,
            "--",
            "set",
            "bridge",
            BRIDGE,
            "datapath_type=netdev",
        )
        ip("addr", "replace", f"{HOST_IP}/{CIDR.prefixlen}", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        ovs.vsctl(
            "set",
            "open_vswitch",
            ".",
            f"external-ids:ovn-bridge-mappings={PHYSNET}:{BRIDGE}",
            f"external-ids:ovn-cms-options={GATEWAY_CHASSIS}",
        )

    def stop(self) -> None:
        """The host's address leaves br-ex at once; the bridge itself is an OVS interface,
        whose link OVS's own stop removes (and ``host.restore`` if OVS was already down)."""
        if _holds_address():
            ip("addr", "del", f"{HOST_IP}/{CIDR.prefixlen}", "dev", BRIDGE)

    def check(self) -> tuple[bool, str]:
        if not _holds_address():
            return False, f"{BRIDGE} is missing or does not hold {HOST_IP}"
        if not gateway_chassis():
            return False, f"the chassis is not a gateway chassis ({GATEWAY_CHASSIS})"
        try:
            router = _one("routers", ROUTER)
        except _API_ERRORS as exc:
            return False, f"cannot ask Neutron: {exc}"
        address = None if router is None else gateway_address(router)
        if address is None:
            return False, f"{ROUTER} is missing or has no gateway on {NETWORK}"
        if not _answers(address):
            return False, f"{ROUTER}'s gateway {address} does not answer ping on {BRIDGE}"
        return True, f"{NETWORK} {CIDR} on {BRIDGE} (host {HOST_IP}), {ROUTER} at {address}"

    def purge(self) -> None:
        """The network and the router live in Neutron's database."""


def _one(resource: str, name: str) -> dict[str, Any] | None:
    found = neutron_api.call("GET", f"/v2.0/{resource}?name={name}")[resource]
    return dict(found[0]) if found else None


def _ensure_network() -> str:
    network = _one("networks", NETWORK)
    if network is None:
        network = neutron_api.call(
            "POST",
            "/v2.0/networks",
            {
                "network": {
                    "name": NETWORK,
                    "router:external": True,
                    "provider:network_type": "flat",
                    "provider:physical_network": PHYSNET,
                }
            },
        )["network"]
    network_id = str(network["id"])
    subnets = neutron_api.call("GET", f"/v2.0/subnets?network_id={network_id}&cidr={CIDR}")
    if not subnets["subnets"]:
        neutron_api.call(
            "POST",
            "/v2.0/subnets",
            {
                "subnet": {
                    "name": SUBNET,
                    "network_id": network_id,
                    "ip_version": 4,
                    "cidr": str(CIDR),
                    "gateway_ip": HOST_IP,
                    "enable_dhcp": False,
                    "allocation_pools": [POOL],
                }
            },
        )
    return network_id


def _ensure_router(network_id: str) -> dict[str, Any]:
    gateway = {"network_id": network_id}
    router = _one("routers", ROUTER)
    if router is None:
        body = {"router": {"name": ROUTER, "external_gateway_info": gateway}}
        return dict(neutron_api.call("POST", "/v2.0/routers", body)["router"])
    if (router.get("external_gateway_info") or {}).get("network_id") != network_id:
        body = {"router": {"external_gateway_info": gateway}}
        return dict(neutron_api.call("PUT", f"/v2.0/routers/{router['id']}", body)["router"])
    return router


def gateway_address(router: dict[str, Any]) -> str | None:
    info = router.get("external_gateway_info") or {}
    for fixed in info.get("external_fixed_ips") or []:
        if ipaddress.ip_address(fixed["ip_address"]) in CIDR:
            return str(fixed["ip_address"])
    return None


def gateway_chassis() -> bool:
    """This machine's chassis offers itself as a gateway in the SB database."""
    try:
        system_id = ovs.vsctl("get", "open_vswitch", ".", "external-ids:system-id", timeout=3)
        found = ovn.sbctl(
            "--bare",
            "--columns=other_config",
            "find",
            "chassis",
            f"name={system_id.strip().strip(chr(34))}",
            timeout=3,
        )
    except StackError:
        return False
    return GATEWAY_CHASSIS in found


def _holds_address() -> bool:
    try:
        links = json.loads(ip("-j", "addr", "show", BRIDGE) or "[]")
    except (StackError, ValueError):
        return False
    return any(a.get("local") == HOST_IP for link in links for a in link.get("addr_info", []))


def _answers(address: str) -> bool:
    done = subprocess.run(
        ["ping", "-c", "1", "-W", "1", "-I", BRIDGE, address],
        capture_output=True,
        check=False,
        timeout=5,
    )
    return done.returncode == 0
