"""Swarm's division of work between a manager's Kuryr and a node's, on one Neutron: the manager
allocates the network, its subnet and every task's address; the node adopts all three; the
swarm's releases and FreeNetwork leave nothing (README: Swarm). The requests are those
swarmkit's allocator and a node's dockerd send (moby 20.10's vendored code)."""

from __future__ import annotations

from pathlib import Path

from kuryr import naming
from kuryr.backends.neutron_api import Resource
from kuryr.driver import KuryrNetworkDriver
from kuryr.plugin import protocol as p
from tests.fakes.daemon import Daemon, Net, daemon, default_subnetpools
from tests.fakes.neutron import FakeNeutron

SWARM_NET = "q8pu5mcdn4pxl6tfv2zj6tq1k"
SERIAL = {p.OPT_IPAM_SERIAL: "true"}
GATEWAY = {p.OPT_REQUEST_ADDRESS_TYPE: p.REQUEST_ADDRESS_TYPE_GATEWAY}


async def allocate(manager: Daemon) -> tuple[str, str, str, dict[str, str]]:
    """What swarmkit's allocator asks the manager's Kuryr for a new swarm network: the pool,
    the gateway (serially), then AllocateNetwork. (PoolID, CIDR, gateway, driver options)."""
    pool = await manager.ipam.request_pool(p.RequestPoolRequest.model_validate({}))
    gateway = await manager.request_address(pool.pool_id, options={**GATEWAY, **SERIAL})
    request = {
        "NetworkID": SWARM_NET,
        "Options": None,
        "IPv4Data": [{"AddressSpace": "", "Pool": pool.pool, "Gateway": f"{gateway}/24"}],
        "IPv6Data": None,
    }
    answer = await manager.network.allocate_network(
        p.AllocateNetworkRequest.model_validate(request)
    )
    return pool.pool_id, pool.pool, gateway, answer.options


async def node_network(node: Daemon, cidr: str, gateway: str, options: dict[str, str]) -> str:
    """A node's dockerd creating the swarm network for a task: RequestPool of the swarm's CIDR,
    the gateway, CreateNetwork under the swarm's id with the allocation's options."""
    pool = await node.ipam.request_pool(p.RequestPoolRequest.model_validate({"Pool": cidr}))
    await node.request_address(pool.pool_id, gateway, GATEWAY)
    data = {"AddressSpace": "no_address_space", "Pool": cidr, "Gateway": f"{gateway}/24"}
    request = {
        "NetworkID": SWARM_NET,
        "IPv4Data": [data],
        "Options": {p.OPT_GENERIC: options},
    }
    await node.network.create_network(p.CreateNetworkRequest.model_validate(request))
    return pool.pool_id


def port_at(neutron: FakeNeutron, address: str) -> Resource | None:
    found = [
        port
        for port in neutron.rows("ports", {})
        if any(ip["ip_address"] == address for ip in port["fixed_ips"])
    ]
    return found[0] if found else None


async def test_the_manager_allocates_the_node_adopts_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    neutron = FakeNeutron()
    default_subnetpools(neutron)
    pools_before = neutron.rows("subnetpools", {})
    async with (
        daemon(tmp_path / "h2", neutron=neutron, host="h2", scope="global") as manager,
        daemon(tmp_path / "h3", neutron=neutron, host="h3", scope="global") as node,
    ):
        pool_id, cidr, gateway, options = await allocate(manager)
        network = neutron.get("networks", options["neutron.net.uuid"])
        subnet = neutron.get("subnets", options["neutron.subnet.uuid"])
        assert network is not None and subnet is not None
        assert network["name"] == naming.network_name(SWARM_NET)
        assert naming.id_tags(naming.swarm_claim(SWARM_NET)) == [
            t for t in network["tags"] if t.startswith(naming.TAG_ID_LOW)
        ]
        assert (subnet["cidr"], subnet["gateway_ip"]) == (cidr, gateway)
        assert naming.TAG_SWARM_SUBNET in subnet["tags"]

        # The allocator holds two tasks' addresses: unowned, unbound, tagged.
        first = await manager.request_address(pool_id, options=SERIAL)
        second = await manager.request_address(pool_id, options=SERIAL)
        for address in (first, second):
            held = port_at(neutron, address)
            assert held is not None
            assert (held["device_owner"], held["binding:host_id"]) == ("", "")
            assert naming.TAG_SWARM_ADDRESS in held["tags"]
        # A new leader asking again for an address the swarm holds gets it.
        assert await manager.request_address(pool_id, first, SERIAL) == first

        # The node adopts the network (an anchor, no marker, no pool ports) and the address.
        node_pool = await node_network(node, cidr, gateway, options)
        assert node_pool != pool_id
        anchors = neutron.rows("ports", {"device_owner": naming.ANCHOR_OWNER})
        assert [a["binding:host_id"] for a in anchors] == ["h3"]
        assert await node.request_address(node_pool, first) == first
        net = Net(SWARM_NET, node_pool, cidr, network["id"], subnet["id"])
        task = await node.create_endpoint(net, first)
        await node.join(task)
        taken = port_at(neutron, first)
        assert taken is not None
        assert (taken["device_owner"], taken["binding:host_id"]) == (naming.DEVICE_OWNER, "h3")
        assert [pt["binding:host_id"] for pt in neutron.rows("ports", {})].count("h3") == 2

        # The task stops: the node hands the port back; the swarm's release deletes it.
        await node.stop(task)
        back = port_at(neutron, first)
        assert back is not None and (back["device_owner"], back["binding:host_id"]) == ("", "")
        await manager.release_address(pool_id, first)
        await manager.release_address(pool_id, second)
        assert port_at(neutron, first) is None and port_at(neutron, second) is None

        # FreeNetwork while the node still has the network: it stays for the node, whose
        # DeleteNetwork then removes it.
        await manager.network.free_network(p.FreeNetworkRequest(network_id=SWARM_NET))
        kept = neutron.get("networks", network["id"])
        assert kept is not None and naming.TAG_MADE_NET in kept["tags"]
        await node.network.delete_network(p.NetworkRequest(network_id=SWARM_NET))
        await node.ipam.release_pool(p.ReleasePoolRequest(pool_id=node_pool))
        await manager.release_address(pool_id, gateway)
        await manager.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool_id))
        # DeleteNetwork answered once journaled; the removal from Neutron goes on behind it.
        for side in (node, manager):
            assert isinstance(side.network, KuryrNetworkDriver)
            await side.network.removals.drained()
        assert neutron.get("networks", network["id"]) is None
        assert neutron.rows("ports", {}) == []
        assert neutron.rows("subnetpools", {}) == pools_before


async def test_freeing_takes_the_addresses_of_tasks_still_stopping(tmp_path: Path) -> None:
    """The swarm frees a network without releasing what its stopping tasks hold: those go too,
    or the node's hand-back would leave a port no one deletes."""
    neutron = FakeNeutron()
    default_subnetpools(neutron)
    async with daemon(tmp_path, neutron=neutron, host="h2", scope="global") as manager:
        pool_id, _, _, options = await allocate(manager)
        address = await manager.request_address(pool_id, options=SERIAL)
        held = port_at(neutron, address)
        assert held is not None
        # A node took it for its task, which is still stopping.
        await neutron.update(
            "ports", held["id"], {"device_owner": naming.DEVICE_OWNER, "binding:host_id": "h3"}
        )
        await manager.network.free_network(p.FreeNetworkRequest(network_id=SWARM_NET))
        assert port_at(neutron, address) is None
        assert neutron.get("networks", options["neutron.net.uuid"]) is None


async def test_a_local_scope_daemon_allocates_nothing(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        before = d.neutron.rows("networks", {})
        request = p.AllocateNetworkRequest.model_validate({"NetworkID": SWARM_NET})
        assert (await d.network.allocate_network(request)).options == {}
        await d.network.free_network(p.FreeNetworkRequest(network_id=SWARM_NET))
        assert d.neutron.rows("networks", {}) == before
