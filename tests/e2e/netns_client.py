"""A client outside every container's security groups: a network namespace the test plugs,
by hand, to a Neutron port of its own on the same network with a group of its own."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any

from tests.e2e.helpers import DockerEnv, Neutron, chassis_hostname, run, wait_for

CLIENT_OWNER = "e2e:client"


@dataclass(frozen=True)
class NetnsClient:
    namespace: str
    address: str

    def fetch(self, address: str, timeout_s: int = 8) -> str | None:
        """GET http://address/ from the namespace; None when the connection fails or hangs."""
        proc = run(
            [
                "ip", "netns", "exec", self.namespace,
                "timeout", str(timeout_s), "busybox", "wget", "-q", "-O", "-", f"http://{address}/",
            ],
            check=False,
        )  # fmt: skip
        return proc.stdout.strip() if proc.returncode == 0 else None


def _ovn_installed(iface: str) -> bool:
    proc = run(["ovs-vsctl", "get", "Interface", iface, "external_ids:ovn-installed"], check=False)
    return proc.returncode == 0 and proc.stdout.strip().strip('"') == "true"


def plug_client(env: DockerEnv, neutron: Neutron, network: dict[str, Any]) -> NetnsClient:
    """A namespace on a new port of ``network`` whose only group allows egress (Neutron's
    default rules for a new group). Everything is removed at the test's teardown."""
    group = neutron.create("security-groups", name=env.name("client-sg"))
    env.defer(lambda: neutron.delete("security-groups", group["id"]))
    port = neutron.create(
        "ports",
        name=env.name("client-port"),
        network_id=network["id"],
        security_groups=[group["id"]],
        device_owner=CLIENT_OWNER,
        **{"binding:host_id": chassis_hostname()},
    )
    env.defer(lambda: neutron.delete("ports", port["id"]))
    fixed = port["fixed_ips"][0]
    subnet = neutron.show("subnets", fixed["subnet_id"])
    assert subnet is not None
    prefixlen = ipaddress.ip_network(subnet["cidr"]).prefixlen

    namespace = env.name("client-ns")
    suffix = secrets.token_hex(4)
    host_end, ns_end = f"e2e{suffix}h", f"e2e{suffix}n"
    run(["ip", "netns", "add", namespace])
    env.defer(lambda: run(["ip", "netns", "del", namespace], check=False))
    run(["ip", "link", "add", host_end, "mtu", str(network["mtu"]), "type", "veth",
         "peer", "name", ns_end, "mtu", str(network["mtu"])])  # fmt: skip
    env.defer(lambda: run(["ip", "link", "del", host_end], check=False))
    run(["ip", "link", "set", ns_end, "netns", namespace])
    in_ns = ["ip", "-n", namespace]
    run([*in_ns, "link", "set", ns_end, "address", port["mac_address"]])
    run([*in_ns, "addr", "add", f"{fixed['ip_address']}/{prefixlen}", "dev", ns_end])
    run([*in_ns, "link", "set", ns_end, "up"])
    run([*in_ns, "link", "set", "lo", "up"])
    run(["ip", "link", "set", host_end, "up"])
    run(
        [
            "ovs-vsctl", "add-port", "br-int", host_end, "--", "set", "Interface", host_end,
            f"external_ids:iface-id={port['id']}",
            f"external_ids:attached-mac={port['mac_address']}",
            "external_ids:iface-status=active",
        ]
    )  # fmt: skip
    env.defer(lambda: run(["ovs-vsctl", "--if-exists", "del-port", "br-int", host_end]))
    wait_for(lambda: _ovn_installed(host_end), f"ovn-controller to install {host_end}")
    return NetnsClient(namespace=namespace, address=fixed["ip_address"])
