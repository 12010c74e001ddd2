"""Swarm-scoped networks: what a swarm manager allocates in Neutron, and frees.

With ``capability_scope = global`` dockerd in swarm mode hands a swarm-scoped Kuryr network to
the swarm. The manager's allocator asks its Kuryr for the pool and gateway (IPAM RequestPool,
RequestAddress) and then AllocateNetwork: Kuryr makes the Neutron network and subnet here,
claimed under ``swarm.<swarm network id>`` (:func:`kuryr.naming.swarm_claim`), and answers
their uuids as driver options. The swarm passes those options to every node's CreateNetwork
(dockerd creates the network on a node when a task or an attachable container needs it, under
the swarm's id), so each node adopts the network and subnet like any other host's Docker
network, with an anchor (:mod:`kuryr.domain.sharing`). The allocator's RequestAddress for a
task holds the address on an unowned port (:meth:`Broker.reserve_for_swarm`), which the node
running the task adopts. FreeNetwork is the claim leaving: the network goes now if no node
uses it any more, else with the last node's DeleteNetwork.
"""

from __future__ import annotations

import ipaddress
import logging

from kuryr import naming
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.domain import sharing
from kuryr.domain.ipam import OPT_SUBNET_UUID, Ipam
from kuryr.domain.networks import OPT_NET_NAME, OPT_NET_UUID, Networks
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

# The address space a node's dockerd gives Kuryr's pools (its GetDefaultAddressSpaces); the
# manager's AllocateNetwork carries none, so a pool this daemon's IPAM chose is marked so.
_KURYR_SPACE = "no_address_space"


class Swarm:
    def __init__(self, neutron: NeutronApi, networks: Networks, ipam: Ipam) -> None:
        self._neutron = neutron
        self._networks = networks
        self._ipam = ipam
        self._sharing = sharing.Sharing(neutron)

    async def allocate(self, req: p.AllocateNetworkRequest) -> p.AllocateNetworkResponse:
        """Make (or, asked again by a new leader, find) the network and its subnets; answer
        the options every node's CreateNetwork adopts them by, beside the user's own."""
        claim = naming.swarm_claim(req.network_id)
        network = await self._networks.find(claim, anchored=True)
        if network is None:
            network = await self._networks.create(self._create_request(claim, req))
            for subnet in network.subnets:
                raw = await self._neutron.show("subnets", subnet.id)
                tags = list((raw or {}).get("tags") or [])
                await self._neutron.set_tags("subnets", subnet.id, [*tags, naming.TAG_SWARM_SUBNET])
        options = {k: v for k, v in req.options.items() if k != OPT_NET_NAME}
        options[OPT_NET_UUID] = network.neutron_id
        for subnet in network.subnets:
            options[OPT_SUBNET_UUID[subnet.version]] = subnet.id
        LOG.info(
            "swarm network %s allocated: Neutron network %s", req.network_id, network.neutron_id
        )
        return p.AllocateNetworkResponse(options=options)

    def _create_request(self, claim: str, req: p.AllocateNetworkRequest) -> p.CreateNetworkRequest:
        """The CreateNetwork the allocation amounts to. The claim is no Docker id, so the model
        is built without validation; the rest of it was validated as AllocateNetwork's."""
        data = []
        for ipam in [*req.ipv4_data, *req.ipv6_data]:
            cidr = ipaddress.ip_network(ipam.pool, strict=False)
            space = _KURYR_SPACE if self._ipam.choice_for(cidr) is not None else ""
            data.append(ipam.model_copy(update={"address_space": space}))
        return p.CreateNetworkRequest.model_construct(
            network_id=claim,
            options={p.OPT_GENERIC: dict(req.options)},
            ipv4_data=[d for d in data if ipaddress.ip_network(d.pool, strict=False).version == 4],
            ipv6_data=[d for d in data if ipaddress.ip_network(d.pool, strict=False).version == 6],
        )

    async def free(self, req: p.FreeNetworkRequest) -> None:
        """The allocation's claim leaves: the addresses the swarm still holds go, and so does
        the network once no node uses it (else the last node's DeleteNetwork removes it)."""
        claim = naming.swarm_claim(req.network_id)
        network = await self._networks.find(claim, anchored=True)
        if network is None:
            return
        ports = await self._sharing.ports(network.neutron_id)
        # Every address the swarm held goes, a task's still on a node too: the swarm frees a
        # network once no service uses it, and never releases what its tasks still held then
        # (a task stopping on a node hands its port back afterwards, which would keep it).
        swarm_held = {pt.id for pt in ports if naming.TAG_SWARM_ADDRESS in pt.tags}
        for port_id in sorted(swarm_held):
            await self._delete_port(port_id)
        ports = [pt for pt in ports if pt.id not in swarm_held]
        anchor = sharing.anchor_of(ports, claim)
        made = {s.id for s in network.subnets} if anchor is None else set()
        leaving = sharing.Leaving(
            frozenset({claim}),
            frozenset({anchor.id} if anchor is not None else set()),
            frozenset(made),
        )
        pools = await self._sharing.leave(network.neutron_id, leaving, ports)
        await self._networks.left(network, pools)
        LOG.info("swarm network %s freed", req.network_id)

    async def _delete_port(self, port_id: str) -> None:
        try:
            await self._neutron.delete("ports", port_id)
        except NeutronError as exc:
            if not exc.not_found:
                raise
