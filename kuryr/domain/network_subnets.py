"""The Neutron subnets of a Docker network's pools: adopted by option, an existing one of the
same CIDR, or created; what they carry and which subnetpool they come from.

Split from :mod:`kuryr.domain.networks`, which decides when a network gets its subnets (and
what runs alongside: the network's tags are written while its subnets are made).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from kuryr import naming
from kuryr.backends.model import IPNetwork, Network, Subnet, allocation_pools
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.domain.ipam import OPT_SUBNET_NAME, OPT_SUBNET_UUID, Ipam, PoolChoice
from kuryr.domain.lost_creates import Attempt
from kuryr.domain.routers import router_tags
from kuryr.errors import Conflict, InvalidRequest, KuryrError, NotFound
from kuryr.plugin import protocol as p

# What finds a subnet whose create got no answer: one CIDR per network, Kuryr's name.
_SUBNET_KEYS = ("network_id", "cidr", "name")

Undo = Callable[[], Awaitable[Any]]


class NetworkSubnets:
    """One Neutron subnet per Docker pool of a network."""

    def __init__(self, neutron: NeutronApi, ipam: Ipam, enable_dhcp: bool = True) -> None:
        self._neutron = neutron
        self._ipam = ipam
        self._enable_dhcp = enable_dhcp

    async def ensure(
        self,
        network: Network,
        req: p.CreateNetworkRequest,
        undo: list[Undo],
        candidates: list[Subnet],
        router: str | None,
        attempt: Attempt | None = None,
    ) -> list[Subnet]:
        """One Neutron subnet per Docker pool: adopted by option, an existing one of the same
        CIDR among ``candidates`` (the Neutron network's subnets), or created (in one bulk
        call); the subnets created. A subnet is found by its network and CIDR; one of a
        dedicated pool, and an existing one a pool adopts, also carries the pool's id as a
        tag, as kuryr-libnetwork tags them. One created while ``router`` is wanted carries
        the router's tag (:mod:`kuryr.domain.routers`). ``attempt``: the create is recorded
        (kuryr.domain.lost_creates) where a lost answer would leave a subnet behind, i.e. on a
        network Kuryr did not make (one it made takes its subnets along when it goes)."""
        options = req.generic_options
        wanted: list[tuple[dict[str, Any], PoolChoice | None]] = []
        for data in [*req.ipv4_data, *req.ipv6_data]:
            cidr = ipaddress.ip_network(data.pool, strict=False)
            if cidr.prefixlen == 0:
                continue  # the null IPAM driver: no addresses, no subnet
            # A pool Kuryr's IPAM chose serves only a network on Kuryr's IPAM.
            choice = None if _docker_ipam(data) else self._ipam.choice_for(cidr)
            present = await self.adopt_subnet(network, cidr, options) or next(
                (s for s in candidates if s.cidr == cidr), None
            )
            if present is not None:
                if all(s.id != present.id for s in network.subnets):
                    network.subnets.append(present)
                if choice is not None:
                    await self._ipam.mark_adopted(choice, present)
                    self._ipam.subnet_created(choice, present)
                continue
            choice = choice or await self._recover_choice(data, cidr)
            attrs = self._subnet_attrs(network, data, cidr, choice)
            subnetpool_id = subnetpool_for(network, cidr, choice, candidates)
            if subnetpool_id is not None:
                attrs["subnetpool_id"] = subnetpool_id
            wanted.append((attrs, choice))
        if not wanted:
            return []
        items = [attrs for attrs, _ in wanted]
        try:
            if attempt is not None:
                created = await attempt.create_bulk("subnets", items, _SUBNET_KEYS)
            else:
                created = await self._neutron.create_bulk("subnets", items)
        except NeutronError as exc:
            raise _subnet_error(exc, [a for a, _ in wanted]) from exc
        made = []
        for raw, (_, choice) in zip(created, wanted, strict=True):
            subnet = Subnet.from_neutron(raw)
            undo.append(self._subnet_deleter(subnet.id))
            network.subnets.append(subnet)
            made.append(subnet)
            if choice is not None:
                self._ipam.subnet_created(choice, subnet)
            tags = router_tags(router, subnet)
            if choice is not None and choice.tag is not None:
                # kuryr-libnetwork's ReleaseAddress finds a pool's subnet by this tag: without
                # it, that daemon never deletes a port of the network (see the README's
                # migration section).
                tags.append(choice.tag)
            if tags:
                await self._neutron.set_tags("subnets", subnet.id, tags)
        return made

    def _subnet_deleter(self, subnet_id: str) -> Undo:
        return lambda: self._neutron.delete("subnets", subnet_id)

    async def _recover_choice(self, data: p.IPAMData, cidr: IPNetwork) -> PoolChoice | None:
        if _docker_ipam(data):
            return None
        return await self._ipam.recover_choice(cidr)

    def _subnet_attrs(
        self, network: Network, data: p.IPAMData, cidr: IPNetwork, choice: PoolChoice | None
    ) -> dict[str, Any]:
        gateway = str(ipaddress.ip_interface(data.gateway).ip) if data.gateway else None
        attrs: dict[str, Any] = {
            "name": naming.subnet_name(str(cidr)),
            "network_id": network.neutron_id,
            "ip_version": cidr.version,
            "cidr": str(cidr),
            "gateway_ip": gateway,
            # Docker's IPAM hands out the addresses: a DHCP port (and, with OVN metadata,
            # the metadata port on .2) would take one Docker gives a container.
            "enable_dhcp": self._enable_dhcp and choice is not None,
        }
        aux = {str(ipaddress.ip_interface(a).ip) for a in data.aux_addresses.values()}
        if choice is not None:
            aux |= choice.aux
        if aux:
            excluded = aux | ({gateway} if gateway else set())
            attrs["allocation_pools"] = allocation_pools(cidr, excluded)
        return attrs

    async def adopt_subnet(
        self, network: Network, cidr: IPNetwork, options: dict[str, str]
    ) -> Subnet | None:
        uuid = options.get(OPT_SUBNET_UUID[cidr.version])
        name = options.get(OPT_SUBNET_NAME[cidr.version])
        if not uuid and not name:
            return None
        if uuid:
            raw = await self._neutron.show("subnets", uuid)
            if raw is None:
                raise NotFound(f"Neutron subnet {uuid} does not exist")
        else:
            raw = await one_named(self._neutron, "subnets", name or "")
        subnet = Subnet.from_neutron(raw)
        if subnet.network_id != network.neutron_id:
            raise InvalidRequest(
                f"subnet {subnet.id} is on network {subnet.network_id}, not {network.neutron_id}"
            )
        if subnet.cidr != cidr:
            raise InvalidRequest(f"subnet {subnet.id} is {subnet.cidr}, Docker's pool is {cidr}")
        if all(s.id != subnet.id for s in network.subnets):
            network.subnets.append(subnet)
        return subnet


def _docker_ipam(data: p.IPAMData) -> bool:
    """The pool is Docker's own IPAM's (its address spaces), not one Kuryr's IPAM chose."""
    return data.address_space in ("", "LocalDefault", "GlobalDefault")


def subnetpool_for(
    network: Network, cidr: IPNetwork, choice: PoolChoice | None, candidates: list[Subnet]
) -> str | None:
    """The subnetpool a subnet Kuryr creates comes from (None: no pool).

    Neutron allows one subnetpool (or none) per network and IP version. So an ip-range slice
    joins the pool of its network's other subnets of its version, and the first slice takes
    none, which leaves room for other hosts' slices, on a network Kuryr made as on an adopted
    one (a first slice in its own ``kuryrPool-<range>`` would refuse every other range). Such
    a slice is found by the ``kuryrPool-<range>`` id it carries as a tag, like an adopted
    subnet, which is also how kuryr-libnetwork finds a pool's subnet outside the pool.
    """
    if choice is None:
        return None
    if not choice.ip_range:
        return choice.subnetpool_id
    same = [s for s in candidates if s.version == cidr.version]
    return same[0].subnetpool_id if same else None


def _subnet_error(exc: NeutronError, wanted: list[dict[str, Any]]) -> KuryrError:
    cidrs = ", ".join(str(a["cidr"]) for a in wanted)
    if exc.http_status in (400, 409):
        return Conflict(f"cannot create Neutron subnet(s) {cidrs}: {exc.message}")
    return exc


async def one_named(neutron: NeutronApi, resource: str, name: str) -> Resource:
    """The one ``resource`` named ``name`` (an operator's network or subnet to adopt)."""
    found = await neutron.query(resource, {"name": name})
    if not found:
        raise NotFound(f"no Neutron {resource} named {name}")
    if len(found) > 1:
        raise Conflict(f"{len(found)} Neutron {resource} are named {name}; give the uuid")
    return found[0]
