"""Neutron networks that several Docker networks use (one per host, since Docker 23 has no
cluster store): who uses one, and what a Docker network, or a host gone for good, leaving it
removes.

Who uses a Neutron network (its claims), all read from Neutron:

- the Docker network its id tags name (kuryr-libnetwork's convention). Only the first Docker
  network on a network tags it, so its tags stay bounded however many hosts use it. Without
  its ``kuryr.net.existing`` tag that Docker network is the creator (Kuryr made the network);
- every adopting Docker network's anchor port (:data:`naming.ANCHOR_OWNER`): marked as its
  host's (kuryr.domain.ports.mine), ``device_id`` the Docker network id, tagged with the
  subnets it uses and made;
- every host with Kuryr ports (``compute:kuryr``) marked as its own: a host counts as using the
  network while it has ports there, even one whose daemon or chassis is dead (its containers'
  ports stay for when it comes back) until ``kuryr gc --host`` removes them.

A Docker network leaving removes its own leftovers and its anchor, its id tags, and the
``kuryr-subnet-*`` subnets nobody else uses. The last one out (no claim left) removes what
Kuryr created: the network itself when Kuryr made it, else Kuryr's subnets and tags on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kuryr import naming
from kuryr.backends.model import Network
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.domain import routers
from kuryr.domain.lost_creates import Attempt
from kuryr.domain.ports import desired
from kuryr.domain.ports.mine import Mark, Mine, holder, kuryrs
from kuryr.domain.ports.port import Port
from kuryr.errors import Conflict

LOG = logging.getLogger(__name__)

# A kuryr-subnet-* no claim lists and no port uses may still be another host's CreateNetwork
# under way (its anchor comes after its subnets): it is left alone this long.
ORPHAN_SUBNET_GRACE = 120.0
PORT_FIELDS = [
    *("id", "device_owner", "device_id", "binding:host_id", "description", "name", "tags"),
    "fixed_ips",
]


@dataclass(frozen=True)
class Leaving:
    """What leaves a Neutron network: Docker networks (full ids, or the 32-character lower
    halves their tags carry), the ports that go with them (their leftovers and anchors), and
    the subnets they made (removable even beside a Docker network whose subnets Neutron does
    not list, i.e. one without an anchor)."""

    docker_ids: frozenset[str] = frozenset()
    ports: frozenset[str] = frozenset()
    made: frozenset[str] = frozenset()

    @property
    def lows(self) -> set[str]:
        return {d[:32] for d in self.docker_ids}


@dataclass
class Plan:
    """What leaving does to one Neutron network."""

    delete_ports: list[str] = field(default_factory=list)
    delete_network: bool = False
    tags: list[str] | None = None  # the network's new tags; None: unchanged
    # Ports outside Kuryr (VMs, ...) that keep a network Kuryr made and nobody else uses.
    blockers: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)  # who still uses it (for the log)
    # Subnets only Docker networks without an anchor may use remain: only made ones may go.
    unlisted_users: bool = False


def anchor_of(ports: list[Port], docker_id: str) -> Port | None:
    return next((p for p in ports if p.is_anchor and p.device_id == docker_id), None)


def decide(network: Resource, ports: list[Port], leaving: Leaving) -> Plan:
    """Who is left once ``leaving`` has gone, and so whether the network goes (pure)."""
    tags = list(network.get("tags") or [])
    gone = leaving.lows
    anchors = [
        p
        for p in ports
        if p.is_anchor and p.id not in leaving.ports and p.device_id[:32] not in gone
    ]
    anchored = {a.device_id[:32] for a in anchors}
    tagged = {low: adopted for low, adopted in naming.tag_claims(tags).items() if low not in gone}
    kuryr_ports = [p for p in ports if kuryrs(p) and p.id not in leaving.ports]
    hosts = sorted({holder(p) for p in kuryr_ports})
    plan = Plan(
        delete_ports=sorted(leaving.ports & {p.id for p in ports}),
        users=[f"Docker network {low[:12]}" for low in tagged if low not in anchored]
        + [f"Docker network {a.device_id[:12]} on host {holder(a) or '(none)'}" for a in anchors]
        + [f"ports on host {h or '(none)'}" for h in hosts],
        unlisted_users=any(low not in anchored for low in tagged),
    )
    last = not plan.users
    made = naming.made_by_kuryr(tags)
    if last and made:
        plan.blockers = [
            p.id
            for p in ports
            if not p.device_owner.startswith("network:") and not (kuryrs(p) or p.is_anchor)
        ]
        plan.delete_network = not plan.blockers
        return plan
    kept = _without_claims(tags, leaving)
    if last:
        kept = naming.without_kuryr_tags(kept)
    elif made and all(tagged.values()):
        kept = sorted({*kept, naming.TAG_MADE_NET})  # the creator's tags are gone
    plan.tags = kept if set(kept) != set(tags) else None
    return plan


def removable_subnets(
    subnets: list[Resource], ports: list[Port], leaving: Leaving, plan: Plan, now: float
) -> list[str]:
    """The ``kuryr-subnet-*`` subnets nobody uses once ``leaving`` has gone (pure): no
    remaining anchor lists them and no port but Neutron's own is on them. One the leavers did
    not make goes only when every remaining user lists its subnets, and only when it is older
    than :data:`ORPHAN_SUBNET_GRACE`."""
    listed: set[str] = set()
    remaining = [port for port in ports if port.id not in leaving.ports]
    for port in remaining:
        if port.is_anchor:
            listed |= naming.anchor_subnets(port.tags)[0]
    in_use = {
        subnet_id
        for port in remaining
        if not port.device_owner.startswith("network:")
        for subnet_id in port.subnet_ids
    }
    removable = []
    for subnet in subnets:
        sid = str(subnet["id"])
        if not str(subnet.get("name") or "").startswith(naming.SUBNET_NAME_PREFIX):
            continue
        if sid in listed or sid in in_use:
            continue
        orphan_ok = not plan.unlisted_users and _age(subnet, now) >= ORPHAN_SUBNET_GRACE
        if sid in leaving.made or orphan_ok:
            removable.append(sid)
    return removable


class Sharing:
    """Carries out :func:`decide` against Neutron."""

    def __init__(self, neutron: NeutronApi) -> None:
        self._neutron = neutron

    async def anchor(self, network: Network, found: set[str], mine: Mine, attempt: Attempt) -> str:
        """Make an adopting Docker network's anchor port (its id): the subnets it uses, and
        which of them it made (those not on the network before). A create whose answer is
        lost is found again by the Docker network's id (kuryr.domain.lost_creates)."""
        body = desired.anchor_body(network.neutron_id, network.docker_id, await mine.mark())
        made = await attempt.create("ports", body, ("network_id", "device_id", "device_owner"))
        anchor = Port.from_neutron(made)
        used = [s.id for s in network.subnets]
        tags = naming.anchor_tags(used, [s for s in used if s not in found], network.internal)
        if tags:
            await self._neutron.set_tags("ports", anchor.id, tags)
        return anchor.id

    async def find_anchored(self, docker_id: str) -> tuple[Resource, list[Resource], bool] | None:
        """(network, the subnets it uses, internal) of an adopting Docker network, found by
        its anchor: one that is not the first on its network carries no tag there."""
        anchors = await self._neutron.query(
            "ports", {"device_id": docker_id, "device_owner": naming.ANCHOR_OWNER}
        )
        if not anchors:
            return None
        anchor = Port.from_neutron(anchors[0])
        tags = list(anchor.tags)
        raw = await self._neutron.show("networks", anchor.network_id)
        if raw is None:
            return None
        used, _ = naming.anchor_subnets(tags)
        subnets = await self._neutron.query("subnets", {"network_id": raw["id"]})
        return raw, [s for s in subnets if s["id"] in used], naming.TAG_INTERNAL_NET in tags

    async def ports(self, network_id: str) -> list[Port]:
        found = await self._neutron.query(
            "ports", {"network_id": network_id, "fields": PORT_FIELDS}
        )
        return [Port.from_neutron(raw) for raw in found]

    async def leave(
        self, network_id: str, leaving: Leaving, ports: list[Port] | None = None
    ) -> set[str]:
        """Remove what ``leaving`` leaves behind; the subnetpools of the subnets removed (for
        the caller's ``kuryrPool-*`` cleanup). A leaver that was not the last looks once more
        afterwards: two last ones leaving at once would each have seen the other."""
        pools, plan = await self._leave_once(network_id, leaving, ports)
        if plan is not None and plan.users and not plan.delete_network:
            again, _ = await self._leave_once(network_id, Leaving(), None)
            pools |= again
        return pools

    async def _leave_once(
        self, network_id: str, leaving: Leaving, ports: list[Port] | None
    ) -> tuple[set[str], Plan | None]:
        network = await self._neutron.show("networks", network_id)
        if network is None:
            return set(), None
        if ports is None:
            ports = await self.ports(network_id)
        plan = decide(network, ports, leaving)
        if plan.blockers and leaving.docker_ids:
            raise Conflict(
                f"Neutron network {network_id} still has {len(plan.blockers)} port(s) Kuryr "
                f"did not make: {', '.join(plan.blockers[:5])}"
            )
        anchors = {p.id for p in ports if p.is_anchor}
        for port_id in plan.delete_ports:
            if port_id not in anchors:
                await self._neutron.delete("ports", port_id)
        if plan.blockers:
            for port_id in anchors.intersection(plan.delete_ports):
                await self._neutron.delete("ports", port_id)
            LOG.info("network %s: nobody uses it, kept for ports %s", network_id, plan.blockers)
            return set(), plan
        subnets = await self._neutron.query("subnets", {"network_id": network_id})
        if plan.delete_network:
            for port_id in plan.delete_ports:
                if port_id in anchors:
                    await self._neutron.delete("ports", port_id)
            # Neutron deletes the subnets (and its own network:* ports) with the network,
            # not a router's interfaces.
            await routers.detach(self._neutron, subnets)
            await self._neutron.delete("networks", network_id)
            return _pools(subnets, {str(s["id"]) for s in subnets}), plan
        now = datetime.now(UTC).timestamp()
        removed = set()
        removable = removable_subnets(subnets, ports, leaving, plan, now)
        await routers.detach(self._neutron, [s for s in subnets if s["id"] in removable])
        for subnet_id in removable:
            if await self._delete_subnet(subnet_id):
                removed.add(subnet_id)
        if plan.tags is not None:
            await self._neutron.set_tags("networks", network_id, plan.tags)
        # The anchor goes last: until then a crash leaves the claim, and the retry finishes.
        for port_id in plan.delete_ports:
            if port_id in anchors:
                await self._neutron.delete("ports", port_id)
        if plan.users:
            LOG.info("network %s kept for: %s", network_id, "; ".join(plan.users))
        return _pools(subnets, removed), plan

    async def _delete_subnet(self, subnet_id: str) -> bool:
        try:
            return await self._neutron.delete("subnets", subnet_id)
        except NeutronError as exc:
            if not exc.conflict:
                raise
            LOG.warning("subnet %s is in use, kept", subnet_id)
            return False


def is_leftover(port: Port, mark: Mark) -> bool:
    """A Kuryr port of this host that no endpoint took (an interrupted start), or one
    kuryr-libnetwork released and kept (dockerd has no endpoint left on the network)."""
    return mark.owns(port) and (not port.device_id or port.released_by_libnetwork)


def is_endpoint(port: Port, network: Network, mark: Mark) -> bool:
    """A Kuryr port in use on this host (an unmarked one counts on a network Kuryr made);
    other hosts' ports are theirs to release and keep the network for them."""
    if not (port.kuryr_owned or mark.owns(port)) or is_leftover(port, mark):
        return False
    return holder(port) in ({mark.name} if network.adopted else {mark.name, ""})


def serves(port: Port, network: Network) -> bool:
    """The port is this Docker network's to judge: a port on its own subnets (a Neutron
    network may hold other Docker networks' subnets, one per host), or on no subnet of a
    network Kuryr made for it alone."""
    own = {s.id for s in network.subnets}
    if not port.fixed_ips:
        return not network.adopted and not port.is_anchor
    return any(subnet_id in own for subnet_id in port.subnet_ids)


async def docker_networks(neutron: NeutronApi, mark: Mark) -> dict[str, str | None]:
    """Neutron network id -> the Docker network of ``mark``'s host on it, as far as Neutron says:
    the one its anchor names, else the one the network's tags name when they name only one
    (the halves of several ids cannot be paired)."""
    networks = await neutron.query("networks", {"fields": ["id", "tags"]})
    found: dict[str, str | None] = {
        n["id"]: naming.id_from_tags(n.get("tags") or [])
        if len(naming.tag_claims(n.get("tags") or [])) == 1
        else None
        for n in networks
    }
    fields = ["network_id", "device_id", "binding:host_id", "description"]
    anchors = await neutron.query("ports", {**mark.query(naming.ANCHOR_OWNER), "fields": fields})
    ours = [a for a in map(Port.from_neutron, anchors) if mark.marks(a)]
    found.update({a.network_id: a.device_id for a in ours})
    return found


def _without_claims(tags: list[str], leaving: Leaving) -> list[str]:
    """``tags`` without the leavers' id and existing-network tags. The upper half of an id
    known only by its lower half cannot be paired with it: such halves go once no lower half
    is left. The internal mark goes with the last id."""
    gone = leaving.lows
    drop = {f"{naming.TAG_ID_LOW}:{low}" for low in gone}
    drop |= {naming.existing_net_tag(low) for low in gone}
    drop |= {t for d in leaving.docker_ids if len(d) > 32 for t in naming.id_tags(d)}
    kept = [t for t in tags if t not in drop]
    if not any(t.partition(":")[0] == naming.TAG_ID_LOW for t in kept):
        kept = [
            t
            for t in kept
            if t.partition(":")[0] != naming.TAG_ID_HIGH and t != naming.TAG_INTERNAL_NET
        ]
    return kept


def _pools(subnets: list[Resource], ids: set[str]) -> set[str]:
    """The subnetpools the removed subnets came from, and those they served from outside
    (a slice or adopted subnet carries its pool's id as a tag). dockerd may send ReleasePool
    while a DeleteNetwork that answered early still removes the subnets in the background;
    the pool was kept then, so it is looked at again here."""
    removed = [s for s in subnets if s["id"] in ids]
    pools = {str(s["subnetpool_id"]) for s in removed if s.get("subnetpool_id")}
    return pools | {
        str(t) for s in removed for t in s.get("tags") or [] if naming.is_bare_pool_id(t)
    }


def _age(resource: Resource, now: float) -> float:
    """Seconds since Neutron made it; 0 when Neutron does not say (so it is kept)."""
    created = str(resource.get("created_at") or "")
    try:
        made = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if made.tzinfo is None:
        made = made.replace(tzinfo=UTC)
    return now - made.timestamp()
