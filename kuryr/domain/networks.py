"""Docker networks as Neutron networks and subnets: create, adopt, find again, delete.

A network is found by the Docker id it carries in its tags, so a restarted daemon (dockerd
never replays CreateNetwork) finds it again; found networks are cached in memory.
"""

from __future__ import annotations

import logging
from typing import Any

from kuryr import deadline, naming
from kuryr.backends.model import Network, Subnet
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.backends.state import State
from kuryr.domain import sharing
from kuryr.domain.ipam import Ipam
from kuryr.domain.lost_creates import Attempt, LostCreates
from kuryr.domain.network_subnets import NetworkSubnets, Undo, one_named
from kuryr.domain.ports.mine import Mine
from kuryr.domain.routers import Routers
from kuryr.domain.together import both
from kuryr.errors import Conflict, InvalidRequest, KuryrError, NotFound
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

OPT_NET_UUID = "neutron.net.uuid"
OPT_NET_NAME = "neutron.net.name"
OPT_NET_SHARED = "neutron.net.shared"
MAX_DESCRIPTION = 255  # Neutron's limit


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
        self._subnets = NetworkSubnets(neutron, ipam, enable_dhcp)
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
        # Two look-ups side by side, both before anything is made: the router (an unknown one
        # is refused here) and the network, found again by its tags (after the attempt, which
        # first deletes what a predecessor's lost creates left).
        router, (attempt, existing) = await both(
            self._routers.wanted(req), self._find_again(req.network_id, adopts)
        )
        if existing is not None:
            await self._subnets.ensure(existing, req, [], list(existing.subnets), router)
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
                made = await self._subnets.ensure(network, req, undo, candidates, router, attempt)
                await self._routers.attach_made(router, made, undo)
                found = {c.id for c in candidates}
                anchor = await self._sharing.anchor(network, found, self._mine, attempt)
                undo.append(lambda: self._neutron.delete("ports", anchor))
            else:
                network = await self._create(req, options, undo, attempt)
                # The network's tags and its subnets need only its id: written side by side.
                # Each runs to its end before a failure of either is raised, so the undo never
                # runs while a POST it would have to undo is still under way.
                made, _ = await both(
                    self._subnets.ensure(network, req, undo, candidates, router),
                    self._tag(network),
                )
                await self._routers.attach_made(router, made, undo)
        except BaseException:
            await _run_undo(undo)
            attempt.failed()
            raise
        with self._state.transaction():
            self._remember(network)
            attempt.done()
        return network

    async def _find_again(self, docker_id: str, adopts: bool) -> tuple[Attempt, Network | None]:
        attempt = await self._lost.attempt(docker_id)
        return attempt, await self.find(docker_id, anchored=adopts)

    async def _create(
        self,
        req: p.CreateNetworkRequest,
        options: dict[str, str],
        undo: list[Undo],
        attempt: Attempt,
    ) -> Network:
        """The Neutron network, carrying the tags :meth:`_tag` then writes (Neutron drops
        tags from a network's POST)."""
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
        return _network(req.network_id, {**created, "tags": tags}, [])

    async def _tag(self, network: Network) -> None:
        """Write the tags a network Kuryr made carries (the Docker id it is found by again);
        its deletion, already in the undo, takes them along."""
        network.tags = await self._neutron.set_tags("networks", network.neutron_id, network.tags)

    async def _adopt(
        self, req: p.CreateNetworkRequest, options: dict[str, str], undo: list[Undo]
    ) -> Network:
        if options.get(OPT_NET_UUID):
            found = await self._neutron.show("networks", options[OPT_NET_UUID])
            if found is None:
                raise NotFound(f"Neutron network {options[OPT_NET_UUID]} does not exist")
        else:
            found = await one_named(self._neutron, "networks", options[OPT_NET_NAME])
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
        # Its subnets are only those that serve this Docker network's pools (NetworkSubnets):
        # other subnets may be another Docker network's slice or the owner's own.
        return _adopted(req.network_id, found, [], internal)

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


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _int_option(key: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"option {key} must be an integer, got {value!r}") from exc
