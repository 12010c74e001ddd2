"""Docker networks as Neutron networks and subnets: create, adopt, find again, delete.

A network is found by the Docker id it carries in its tags, so a restarted daemon (dockerd
never replays CreateNetwork) finds it again; found networks are cached in memory.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kuryr import deadline, naming
from kuryr.backends.model import IPNetwork, Network, Subnet, allocation_pools
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.backends.state import State
from kuryr.domain import sharing
from kuryr.domain.ipam import OPT_SUBNET_NAME, OPT_SUBNET_UUID, Ipam, PoolChoice
from kuryr.domain.lost_creates import Attempt, LostCreates
from kuryr.domain.ports.mine import Mine
from kuryr.domain.routers import Routers, router_tags
from kuryr.errors import Conflict, InvalidRequest, KuryrError, NotFound
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

OPT_NET_UUID = "neutron.net.uuid"
OPT_NET_NAME = "neutron.net.name"
OPT_NET_SHARED = "neutron.net.shared"
MAX_DESCRIPTION = 255  # Neutron's limit
# What finds a subnet whose create got no answer: one CIDR per network, Kuryr's name.
_SUBNET_KEYS = ("network_id", "cidr", "name")

Undo = Callable[[], Awaitable[Any]]


class Networks:
    def __init__(
        self,
        neutron: NeutronApi,
        ipam: Ipam,
        mine: Mine,
        enable_dhcp: bool = True,
        *,
        state: State,
        routers: Routers,
        lost: LostCreates | None = None,
    ) -> None:
        self._neutron = neutron
        self._routers = routers
        self._ipam = ipam
        self._mine = mine
        self._enable_dhcp = enable_dhcp
        self._sharing = sharing.Sharing(neutron)
        self._cache: dict[str, Network] = {}
        # Durable copy of the cache: a restarted daemon answers without asking Neutron.
        self._state = state
        # What a failed CreateNetwork made is found again and deleted, its answer lost or not.
        self._lost = lost or LostCreates(state, neutron)

    # --- lookup ----------------------------------------------------------------------------

    async def get(self, docker_id: str) -> Network:
        network = await self.find(docker_id)
        if network is None:
            raise NotFound(f"network {docker_id[:12]} is not a Kuryr network known to Neutron")
        return network

    async def find(self, docker_id: str, anchored: bool = True) -> Network | None:
        """``anchored``: also look for an adopting Docker network's anchor port (one that is
        not the first on its network carries no tag there)."""
        cached = self._cache.get(docker_id) or self._state.network(docker_id)
        if cached is not None:
            self._cache[docker_id] = cached
            return cached
        found = await self._neutron.query("networks", {"tags": naming.id_tag_filter(docker_id)})
        if not found and anchored:
            network = await self._find_by_anchor(docker_id)
            if network is not None:
                self._remember(network)
            return network
        if not found:
            return None
        if len(found) > 1:
            ids = ", ".join(n["id"] for n in found)
            raise Conflict(f"several Neutron networks carry Docker network {docker_id[:12]}: {ids}")
        subnets = await self._neutron.query("subnets", {"network_id": found[0]["id"]})
        network = _network(docker_id, found[0], [Subnet.from_neutron(s) for s in subnets])
        self._remember(network)
        return network

    async def _find_by_anchor(self, docker_id: str) -> Network | None:
        found = await self._sharing.find_anchored(docker_id)
        if found is None:
            return None
        raw, subnets, internal = found
        return _adopted(docker_id, raw, [Subnet.from_neutron(s) for s in subnets], internal)

    def _remember(self, network: Network) -> None:
        self._cache[network.docker_id] = network
        self._state.save_network(network)

    # --- CreateNetwork -----------------------------------------------------------------------

    async def create(self, req: p.CreateNetworkRequest) -> Network:
        options = req.generic_options
        adopts = bool(options.get(OPT_NET_UUID) or options.get(OPT_NET_NAME))
        # An unknown router is refused before anything is made.
        router = await self._routers.wanted(req)
        attempt = await self._lost.attempt(req.network_id)
        existing = await self.find(req.network_id, anchored=adopts)
        if existing is not None:
            await self._ensure_subnets(existing, req, [], list(existing.subnets), router)
            await self._routers.reattach(existing)
            self._remember(existing)
            return existing
        undo: list[Undo] = []
        try:
            candidates: list[Subnet] = []
            if adopts:
                network = await self._adopt(req, options, undo)
                raw = await self._neutron.query("subnets", {"network_id": network.neutron_id})
                candidates = [Subnet.from_neutron(s) for s in raw]
                made = await self._ensure_subnets(network, req, undo, candidates, router, attempt)
                await self._routers.attach_made(router, made, undo)
                found = {c.id for c in candidates}
                anchor = await self._sharing.anchor(network, found, self._mine, attempt)
                undo.append(lambda: self._neutron.delete("ports", anchor))
            else:
                network = await self._create(req, options, undo, attempt)
                made = await self._ensure_subnets(network, req, undo, candidates, router)
                await self._routers.attach_made(router, made, undo)
        except BaseException:
            await _run_undo(undo)
            attempt.failed()
            raise
        with self._state.transaction():
            self._remember(network)
            attempt.done()
        return network

    async def _create(
        self,
        req: p.CreateNetworkRequest,
        options: dict[str, str],
        undo: list[Undo],
        attempt: Attempt,
    ) -> Network:
        attrs: dict[str, Any] = {
            "name": naming.network_name(req.network_id),
            "admin_state_up": True,
        }
        if _truthy(options.get(OPT_NET_SHARED, "")):
            attrs["shared"] = True
        description = naming.creator_description((await self._mine.mark()).name)
        if len(description) <= MAX_DESCRIPTION:
            attrs["description"] = description
        mtu = req.options.get(p.OPT_MTU)
        if mtu:
            attrs["mtu"] = _int_option(p.OPT_MTU, mtu)
        try:
            # Found again by its name (the Docker id's start) and this host's description.
            created = await attempt.create("networks", attrs, ("name", "description"))
        except NeutronError as exc:
            # Only Neutron knows the largest MTU its segments allow.
            if "mtu" in attrs and exc.http_status == 400:
                raise InvalidRequest(
                    f"MTU {attrs['mtu']} refused by Neutron: {exc.message}"
                ) from exc
            raise
        undo.append(lambda: self._neutron.delete("networks", created["id"]))
        tags = naming.id_tags(req.network_id)
        if req.options.get(p.OPT_INTERNAL):
            tags.append(naming.TAG_INTERNAL_NET)
        created["tags"] = await self._neutron.set_tags("networks", created["id"], tags)
        return _network(req.network_id, created, [])

    async def _adopt(
        self, req: p.CreateNetworkRequest, options: dict[str, str], undo: list[Undo]
    ) -> Network:
        if options.get(OPT_NET_UUID):
            found = await self._neutron.show("networks", options[OPT_NET_UUID])
            if found is None:
                raise NotFound(f"Neutron network {options[OPT_NET_UUID]} does not exist")
        else:
            found = await self._one("networks", options[OPT_NET_NAME])
        claimed = bool(naming.tag_claims(found.get("tags") or [])) or bool(
            await self._neutron.query(
                "ports",
                {"network_id": found["id"], "device_owner": naming.ANCHOR_OWNER, "fields": "id"},
            )
        )
        internal = bool(req.options.get(p.OPT_INTERNAL))
        if not claimed:
            # The first Docker network on it tags it as kuryr-libnetwork does (so a single host
            # can switch daemons); the others are known by their anchors alone, so the
            # network's tags do not grow with the number of hosts (kuryr.domain.sharing).
            original = list(found.get("tags", []))
            tags = [*original, *naming.id_tags(req.network_id)]
            tags.append(naming.existing_net_tag(req.network_id))
            if internal:
                tags.append(naming.TAG_INTERNAL_NET)
            # Undone even when the write's answer is lost (Neutron may have done it).
            undo.append(lambda: self._neutron.set_tags("networks", found["id"], original))
            found["tags"] = await self._neutron.set_tags("networks", found["id"], tags)
        # Its subnets are only those that serve this Docker network's pools (_ensure_subnets):
        # other subnets may be another Docker network's slice or the owner's own.
        return _adopted(req.network_id, found, [], internal)

    async def _ensure_subnets(
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
            present = await self._adopt_subnet(network, cidr, options) or next(
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

    async def _adopt_subnet(
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
            raw = await self._one("subnets", name or "")
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

    async def _one(self, resource: str, name: str) -> Resource:
        found = await self._neutron.query(resource, {"name": name})
        if not found:
            raise NotFound(f"no Neutron {resource} named {name}")
        if len(found) > 1:
            raise Conflict(f"{len(found)} Neutron {resource} are named {name}; give the uuid")
        return found[0]

    # --- DeleteNetwork -----------------------------------------------------------------------

    async def delete(self, docker_id: str) -> None:
        """Leave the Neutron network: this Docker network's leftovers, anchor, id tags and the
        subnets nobody else uses go; the network goes with the last Docker network on it when
        Kuryr made it (kuryr.domain.sharing)."""
        network = await self.find(docker_id)
        if network is None:
            return
        ports, mark = await self._sharing.ports(network.neutron_id), await self._mine.mark()
        own = [pt for pt in ports if sharing.serves(pt, network)]
        in_use = [pt for pt in own if sharing.is_endpoint(pt, network, mark)]
        if in_use:
            ids = ", ".join(pt.id for pt in in_use[:5])
            raise Conflict(f"network {docker_id[:12]} still has {len(in_use)} endpoint(s): {ids}")
        leaving = [pt.id for pt in own if sharing.is_leftover(pt, mark)]
        anchor = sharing.anchor_of(ports, docker_id)
        if anchor is not None:
            leaving.append(anchor.id)
            made = naming.anchor_subnets(anchor.tags)[1]
        else:
            # No anchor (the creator, or an adopter tagged by an older daemon or by
            # kuryr-libnetwork): the subnets Kuryr made for it are its own.
            made = {s.id for s in network.subnets}
        gone = sharing.Leaving(frozenset({docker_id}), frozenset(leaving), frozenset(made))
        await self.left(network, await self._sharing.leave(network.neutron_id, gone, ports))

    async def left(self, network: Network, pools: set[str]) -> None:
        """Forget a Docker network that left its Neutron network; ``pools``: the subnetpools
        of the subnets its leaving removed (for the ``kuryrPool-*`` cleanup)."""
        for subnet in network.subnets:
            self._ipam.forget_subnet(subnet)
        for pool in pools | {s.subnetpool_id for s in network.subnets if s.subnetpool_id}:
            await self._ipam.cleanup_subnetpool(pool)
        self._cache.pop(network.docker_id, None)
        self._state.forget_network(network.docker_id)


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


def _adopted(docker_id: str, raw: Resource, subnets: list[Subnet], internal: bool) -> Network:
    """An adopting Docker network as this host keeps it: the tags it would carry on the
    network (the network itself carries them only for the first Docker network on it)."""
    tags = [*naming.id_tags(docker_id), naming.existing_net_tag(docker_id)]
    if internal:
        tags.append(naming.TAG_INTERNAL_NET)
    return _network(docker_id, {**raw, "tags": tags}, subnets)


def _network(docker_id: str, raw: Resource, subnets: list[Subnet]) -> Network:
    return Network(
        docker_id=docker_id,
        neutron_id=raw["id"],
        mtu=int(raw.get("mtu") or 1500),
        tags=list(raw.get("tags", [])),
        subnets=subnets,
    )


async def _run_undo(undo: list[Undo]) -> None:
    # A fresh short budget: the failure may have been the request's budget running out.
    with deadline.cleanup():
        for step in reversed(undo):
            try:
                await step()
            except KuryrError as exc:
                LOG.error("undo after a failed CreateNetwork failed: %s", exc)


def _subnet_error(exc: NeutronError, wanted: list[dict[str, Any]]) -> KuryrError:
    cidrs = ", ".join(str(a["cidr"]) for a in wanted)
    if exc.http_status in (400, 409):
        return Conflict(f"cannot create Neutron subnet(s) {cidrs}: {exc.message}")
    return exc


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _int_option(key: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"option {key} must be an integer, got {value!r}") from exc
