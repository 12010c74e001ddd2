"""A simulated VM's NIC, plugged as Nova plugs a VM: the stack's Neutron network of the VMs,
the VM's port with a trunk on it, and a veth whose machine end is a port of the machine's
br-int bound to that port (``iface-id``) while its VM end, ``eth0``, carries the port's MAC
and address. The caller holds the stack lock."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
from typing import Any

from kuryr import naming
from kuryr.domain.ports.port import Port
from kuryr.stack import netdev, neutron_api, ovs, proc, underlay
from kuryr.stack.errors import StackError
from kuryr.stack.vmplan import DEVICE_OWNER, NETWORK, NIC, NIC_MTU, SUBNET_CIDR, SimVm

INSTALL_TIMEOUT = 20.0
_NEUTRON_ERRORS = (OSError, ValueError, urllib.error.URLError)


def _call(component: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    try:
        return neutron_api.call(method, path, body, timeout=30)
    except urllib.error.HTTPError as exc:
        said = exc.read().decode(errors="replace")[:300]
        raise StackError(component, f"Neutron {method} {path}: {exc.code} {said}") from exc
    except _NEUTRON_ERRORS as exc:
        raise StackError(component, f"Neutron {method} {path}: {exc}") from exc


def _one(component: str, collection: str, query: str) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = _call(component, "GET", f"/v2.0/{collection}?{query}")[collection]
    return found[0] if found else None


def ensure_network() -> dict[str, Any]:
    """The VMs' network (v4, one subnet), made on first use and kept while VMs exist."""
    network = _one("vms", "networks", f"name={NETWORK}")
    if network is None:
        network = _call("vms", "POST", "/v2.0/networks", {"network": {"name": NETWORK}})["network"]
    if _one("vms", "subnets", f"network_id={network['id']}") is None:
        subnet = {"network_id": network["id"], "ip_version": 4, "cidr": SUBNET_CIDR}
        _call("vms", "POST", "/v2.0/subnets", {"subnet": {**subnet, "name": NETWORK}})
    return network


def delete_network() -> None:
    network = _one("vms", "networks", f"name={NETWORK}")
    if network is not None:
        _call("vms", "DELETE", f"/v2.0/networks/{network['id']}")


def _vm_port(vm: SimVm) -> Port | None:
    raw = _one(vm.name, "ports", f"name={vm.port_name}")
    return None if raw is None else Port.from_neutron(raw)


def ensure_port(vm: SimVm, network: dict[str, Any], chassis: str) -> Port:
    """The VM's port, bound to the machine's chassis, and the trunk whose parent it is."""
    port = _vm_port(vm)
    if port is None:
        body = {
            "name": vm.port_name,
            "network_id": network["id"],
            "device_owner": DEVICE_OWNER,
            "device_id": vm.name,
            "binding:host_id": chassis,
        }
        port = Port.from_neutron(_call(vm.name, "POST", "/v2.0/ports", {"port": body})["port"])
    trunk = _one(vm.name, "trunks", f"port_id={port.id}")
    if trunk is None:
        body = {"name": vm.port_name, "port_id": port.id}
        trunk = _call(vm.name, "POST", "/v2.0/trunks", {"trunk": body})["trunk"]
    ids = {"port_id": port.id, "trunk_id": trunk["id"], "mac": port.mac_address}
    vm.ids_file.write_text(json.dumps(ids) + "\n")
    return port


def recorded(vm: SimVm) -> dict[str, str]:
    """The ids ``ensure_port`` kept: port_id, trunk_id, mac (empty before it ran)."""
    try:
        return dict(json.loads(vm.ids_file.read_text()))
    except (OSError, ValueError):
        return {}


def delete_port(vm: SimVm) -> None:
    """The trunk (its subports taken off first: Neutron deletes no port that is one) and the
    VM's port. Kuryr's own ports of the VM go after this (:func:`forget_kuryr_ports`)."""
    port = _vm_port(vm)
    if port is None:
        return
    trunk = _one(vm.name, "trunks", f"port_id={port.id}")
    if trunk is not None:
        subports = [{"port_id": s["port_id"]} for s in trunk.get("sub_ports", [])]
        if subports:
            path = f"/v2.0/trunks/{trunk['id']}/remove_subports"
            _call(vm.name, "PUT", path, {"sub_ports": subports})
        _call(vm.name, "DELETE", f"/v2.0/trunks/{trunk['id']}")
    _call(vm.name, "DELETE", f"/v2.0/ports/{port.id}")


def forget_kuryr_ports(vm: SimVm) -> None:
    """Delete the ports the VM's daemon marked as its own (pool ports it kept ready, anchors
    of networks it adopted): nested Kuryr marks them by the VM's port in their description
    (kuryr.domain.ports.mine), and nothing can use them once the VM is gone."""
    vm_port = recorded(vm).get("port_id")
    if not vm_port:
        return
    marker = urllib.parse.quote(naming.host_description(naming.vm_host(vm_port)))
    for raw in _call(vm.name, "GET", f"/v2.0/ports?description={marker}")["ports"]:
        _call(vm.name, "DELETE", f"/v2.0/ports/{Port.from_neutron(raw).id}")


def _ip(vm: SimVm, *args: str) -> str:
    return proc.run(vm.name, ["ip", *args])


def plug_nic(vm: SimVm, port: Port) -> None:
    """The VM's namespace and its NIC, up with the port's MAC and address, plugged into the
    machine's br-int for the port. Idempotent."""
    if not vm.netns_path.exists():
        _ip(vm, "netns", "add", vm.netns)
    _ip(vm, "-n", vm.netns, "link", "set", "lo", "up")
    if vm.host_link not in netdev.existing_links():
        _ip(vm, "link", "add", vm.host_link, "mtu", str(NIC_MTU), "type", "veth",
            "peer", "name", NIC, "mtu", str(NIC_MTU), "netns", vm.netns)  # fmt: skip
    underlay.quiet_link(None, vm.host_link)
    _ip(vm, "link", "set", vm.host_link, "up")
    _ip(vm, "-n", vm.netns, "link", "set", NIC, "address", port.mac_address)
    subnet_id, ip_address = port.fixed_ips[0]
    subnet = _call(vm.name, "GET", f"/v2.0/subnets/{subnet_id}")["subnet"]
    address = f"{ip_address}/{ipaddress.ip_network(subnet['cidr']).prefixlen}"
    _ip(vm, "-n", vm.netns, "addr", "replace", address, "dev", NIC)
    _ip(vm, "-n", vm.netns, "link", "set", NIC, "up")
    ovs.vsctl(
        "--may-exist", "add-port", "br-int", vm.host_link,
        "--", "set", "Interface", vm.host_link,
        f"external_ids:iface-id={port.id}",
        f"external_ids:attached-mac={port.mac_address}",
        "external_ids:iface-status=active",
        f"external_ids:vm-id={vm.name}",
    )  # fmt: skip
    if not proc.wait_for(lambda: installed(vm), INSTALL_TIMEOUT, 0.1):
        raise StackError(vm.name, f"ovn-controller did not install {vm.host_link} on br-int")


def installed(vm: SimVm) -> bool:
    try:
        ids = ovs.vsctl("--if-exists", "get", "Interface", vm.host_link, "external_ids", timeout=3)
    except StackError:
        return False
    return 'ovn-installed="true"' in ids


def unplug_nic(vm: SimVm) -> None:
    """Undo :func:`plug_nic` (the VM's processes are gone)."""
    ovs.vsctl("--if-exists", "del-port", "br-int", vm.host_link)
    netdev.delete_links([vm.host_link])
    if vm.netns_path.exists():
        _ip(vm, "netns", "del", vm.netns)
