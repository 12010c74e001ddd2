"""Docker IPAM on Neutron: pools are (subnetpool, CIDR) pairs, addresses are Neutron ports.

RequestPool picks or checks a CIDR (a pool of a shared subnetpool also gets its marker,
kuryr.domain.pool_markers); the subnet is created by CreateNetwork with ``subnetpool_id``
and that CIDR, so Neutron enforces uniqueness. RequestAddress creates the endpoint's port
already in its final shape (owner, host binding, fixed IP) through the port broker
(kuryr.domain.ports.broker), which serves it from the pools of pre-created ports when they are
on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, field

from kuryr import naming
from kuryr.backends.model import IPNetwork, Subnet, first_host
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.domain import cidr_claims, cidrs, kuryr_pools, pool_markers
from kuryr.domain.ports.broker import Broker
from kuryr.domain.removals import Removals, overlapping
from kuryr.errors import Conflict, InvalidRequest, NotFound
from kuryr.plugin import protocol as p
from kuryr.plugin.api import IpamDriver

LOG = logging.getLogger(__name__)

OPT_POOL_UUID = "neutron.pool.uuid"
OPT_POOL_NAME = "neutron.pool.name"
OPT_POOL_V6_UUID = "neutron.pool.v6.uuid"
OPT_POOL_V6_NAME = "neutron.pool.v6.name"
OPT_SHARED = "neutron.net.shared"
# An existing subnet Docker's pool is (adoption); accepted as network and as IPAM options.
OPT_SUBNET_UUID = {4: "neutron.subnet.uuid", 6: "neutron.subnet.v6.uuid"}
OPT_SUBNET_NAME = {4: "neutron.subnet.name", 6: "neutron.subnet.v6.name"}


@dataclass
class PoolChoice:
    """What RequestPool decided, kept until CreateNetwork makes the subnet."""

    subnetpool_id: str
    cidr: IPNetwork
    gateway: str | None = None
    aux: set[str] = field(default_factory=set)
    # The subnetpool's one prefix is the CIDR: the PoolID is its bare uuid (kuryr.naming).
    dedicated: bool = False
    # Docker's --ip-range: the CIDR is the range (kuryr.domain.network_subnets.subnetpool_for).
    ip_range: bool = False
    # A shared pool's CIDR: the marker subnetpool whose id is the PoolID (pool_markers).
    marker: str | None = None

    @property
    def pool_id(self) -> str:
        if self.marker is not None:
            return self.marker
        return naming.pool_id(self.subnetpool_id, str(self.cidr), self.dedicated)

    @property
    def tag(self) -> str | None:
        """The id the pool's subnet carries as a tag, as kuryr-libnetwork finds it by."""
        return self.marker or (self.subnetpool_id if self.dedicated else None)


class Ipam(IpamDriver):
    def __init__(
        self,
        neutron: NeutronApi,
        broker: Broker,
        removals: Removals,
        default_pool_v4: str = "kuryr",
        default_pool_v6: str = "kuryr6",
    ) -> None:
        self._neutron = neutron
        self.broker = broker
        self._default_names = {4: default_pool_v4, 6: default_pool_v6}
        self._defaults: dict[int, Resource] = {}
        self._choices: dict[str, PoolChoice] = {}  # PoolID -> choice not yet a subnet
        self._subnets: dict[str, Subnet] = {}  # PoolID -> subnet
        self._bare: dict[str, IPNetwork] = {}  # bare PoolID -> its subnetpool's one prefix
        self._pick_lock = asyncio.Lock()
        # A removal DeleteNetwork left running may hold a CIDR RequestPool wants, or the
        # subnets ReleasePool cleans after.
        self._removals = removals

    # --- RequestPool / ReleasePool ---------------------------------------------------------

    async def request_pool(self, req: p.RequestPoolRequest) -> p.RequestPoolResponse:
        version = 6 if req.v6 else 4
        named = await self._named_pool(req.options, version)
        if req.pool:
            cidr = cidrs.subnet_cidr(req.pool, req.sub_pool, version)
            await self._removals.settled(overlapping([cidr]), [cidr], f"pool {cidr}")
            existing = await self._existing_subnet(req.options, cidr)
            subnetpool = named or await self._pool_of(existing)
            fresh = False
            if subnetpool is None:
                subnetpool, fresh = await self._pool_for_cidr(
                    cidr, _shared(req.options), may_use_default=not req.sub_pool
                )
            if not cidrs.contains(subnetpool, cidr):
                raise InvalidRequest(f"{cidr} is not inside subnetpool {subnetpool['name']}")
            # A subnetpool this request just made holds no subnet: nothing to look for in it.
            # (A subnet another host might make in it meanwhile is refused by Neutron when
            # CreateNetwork makes its own, as one made right after the look-up would be.)
            swarm = False if fresh else await self._check_unused(subnetpool, cidr, existing)
            choice = self.choice_for(cidr) or PoolChoice(
                subnetpool["id"],
                cidr,
                dedicated=cidrs.dedicated(subnetpool, cidr),
                ip_range=bool(req.sub_pool),
            )
            # A swarm network's subnet is found by its pool and CIDR: no marker per node.
            if not choice.dedicated and choice.marker is None and not swarm:
                choice.marker = await pool_markers.create(
                    self._neutron, choice.subnetpool_id, cidr, _shared(req.options)
                )
        else:
            subnetpool = named or await self._default_pool(version)
            async with self._pick_lock:
                cidr, marker = await cidr_claims.claim(
                    self._neutron, subnetpool, _shared(req.options)
                )
                choice = PoolChoice(subnetpool["id"], cidr, marker=marker)
                self._choices[choice.pool_id] = choice
        self._choices.setdefault(choice.pool_id, choice)
        if naming.is_bare_pool_id(choice.pool_id):
            # Its one prefix: RequestAddress and ReleasePool need no Neutron lookup for it.
            self._bare[choice.pool_id] = cidr
        return p.RequestPoolResponse(pool_id=choice.pool_id, pool=str(cidr), data={})

    async def release_pool(self, req: p.ReleasePoolRequest) -> None:
        """Forget the pool now; its Neutron cleanup runs after the network removals under way
        when there are any (its subnet is still there until then), else at once."""
        self._choices.pop(req.pool_id, None)
        self._subnets.pop(req.pool_id, None)
        known = self._known_cidr(req.pool_id)

        async def cleanup() -> None:
            subnetpool_id, cidr = await self._resolve(req.pool_id)
            await self._untag_kept_subnets(subnetpool_id, cidr)
            await self.cleanup_subnetpool(subnetpool_id)

        if not self._removals.after(cleanup, known, f"ReleasePool {req.pool_id}"):
            await cleanup()

    def _known_cidr(self, pool_id: str) -> IPNetwork | None:
        """A PoolID's CIDR when known without Neutron."""
        if not naming.is_bare_pool_id(pool_id):
            return _parse(pool_id)[1]
        return self._bare.get(pool_id)

    async def mark_adopted(self, choice: PoolChoice, subnet: Subnet) -> None:
        """An existing subnet serves the pool: tag it with the pool's id, kuryr-libnetwork's
        mark, by which both daemons find a subnet outside the pool's subnetpool."""
        raw = await self._neutron.show("subnets", subnet.id)
        tags = list((raw or {}).get("tags") or [])
        tag = choice.tag or choice.subnetpool_id
        if raw is not None and tag not in tags:
            await self._neutron.set_tags("subnets", subnet.id, [*tags, tag])

    async def _untag_kept_subnets(self, subnetpool_id: str, cidr: IPNetwork) -> None:
        """Take the pool's tag off the existing subnets it adopted (they stay; Kuryr's own
        ``kuryr-subnet-*`` subnets go with the network)."""
        tagged = await self._neutron.query("subnets", {"cidr": str(cidr), "tags": subnetpool_id})
        for subnet in tagged:
            if str(subnet.get("name") or "").startswith(naming.SUBNET_NAME_PREFIX):
                continue
            kept = [t for t in subnet.get("tags") or [] if t != subnetpool_id]
            try:
                await self._neutron.set_tags("subnets", subnet["id"], kept)
            except NeutronError as exc:
                if not exc.not_found:
                    raise

    async def cleanup_subnetpool(self, subnetpool_id: str) -> None:
        """Delete a ``kuryrPool-*`` subnetpool Kuryr made once no subnet uses it."""
        if any(d["id"] == subnetpool_id for d in self._defaults.values()):
            return
        await kuryr_pools.cleanup(self._neutron, subnetpool_id, self._default_names.values())

    # --- what CreateNetwork needs ----------------------------------------------------------

    def choice_for(self, cidr: IPNetwork) -> PoolChoice | None:
        """The pool RequestPool chose for ``cidr``, if this daemon made that choice."""
        return next((c for c in self._choices.values() if c.cidr == cidr), None)

    async def recover_choice(self, cidr: IPNetwork) -> PoolChoice | None:
        """After a restart between RequestPool and CreateNetwork: which pool serves ``cidr``
        (its own ``kuryrPool-<cidr>`` first: an ip range inside the default pool has one)."""
        name = naming.subnetpool_name(str(cidr))
        pools = await self._neutron.query("subnetpools", {"name": name})
        for pool in pools:
            shared = pool_markers.shared_pool_of(pool)
            if shared is not None:
                return PoolChoice(shared, cidr, marker=str(pool["id"]))
        if pools:
            return PoolChoice(pools[0]["id"], cidr, dedicated=cidrs.dedicated(pools[0], cidr))
        default = await self._default_pool(cidr.version)
        if cidrs.contains(default, cidr):
            return PoolChoice(default["id"], cidr)
        return None

    def subnet_created(self, choice: PoolChoice, subnet: Subnet) -> None:
        self._choices.pop(choice.pool_id, None)
        self._subnets[choice.pool_id] = subnet

    def forget_subnet(self, subnet: Subnet) -> None:
        for pool_id in [k for k, s in self._subnets.items() if s.id == subnet.id]:
            del self._subnets[pool_id]
        self.broker.forget_subnet(subnet.id)

    # --- RequestAddress / ReleaseAddress ---------------------------------------------------

    async def request_address(self, req: p.RequestAddressRequest) -> p.RequestAddressResponse:
        _, cidr = await self._resolve(req.pool_id)
        if req.address and ipaddress.ip_address(req.address) not in cidr:
            # With --ip-range the pool (and the Neutron subnet) is the range itself.
            what = "gateway" if req.is_gateway else "address"
            raise InvalidRequest(f"{what} {req.address} is not in pool {cidr}")
        choice = self._choices.get(req.pool_id)
        subnet = None if choice else await self._subnet(req.pool_id)
        if req.is_gateway:
            address = self._gateway(req, cidr, choice, subnet)
        elif subnet is None:
            if choice is None or not req.address:
                raise NotFound(
                    f"pool {req.pool_id} has no Neutron subnet; create the network first"
                )
            # An --aux-address, asked before the subnet exists: kept out of its pools later.
            choice.aux.add(req.address)
            address = req.address
        elif req.address and req.address == subnet.gateway_ip:
            # Neutron would give a port the gateway's address, and ReleaseAddress skips the
            # gateway: that port would never go. Docker's own IPAM refuses it too (in use).
            raise Conflict(f"address {req.address} is the gateway of pool {cidr}")
        elif req.from_swarm:
            address = await self.broker.reserve_for_swarm(subnet, req.address or None)
        else:
            mac = req.options.get(p.OPT_MAC_ADDRESS) or None
            address = await self.broker.reserve(subnet, req.address or None, mac)
        return p.RequestAddressResponse(address=f"{address}/{cidr.prefixlen}", data={})

    def _gateway(
        self,
        req: p.RequestAddressRequest,
        cidr: IPNetwork,
        choice: PoolChoice | None,
        subnet: Subnet | None,
    ) -> str:
        if subnet is not None:
            if subnet.gateway_ip is None:
                return "0.0.0.0" if cidr.version == 4 else "::"
            if req.address and req.address != subnet.gateway_ip:
                raise Conflict(
                    f"gateway {req.address} differs from subnet {subnet.id}'s {subnet.gateway_ip}"
                )
            return subnet.gateway_ip
        address = req.address or first_host(cidr)
        if choice is not None:
            choice.gateway = address
        return address

    async def release_address(self, req: p.ReleaseAddressRequest) -> None:
        _, cidr = await self._resolve(req.pool_id)
        if ipaddress.ip_address(req.address) not in cidr:
            raise InvalidRequest(f"address {req.address} is not in pool {cidr}")
        choice = self._choices.get(req.pool_id)
        if choice is not None:
            choice.aux.discard(req.address)
            return
        subnet = await self._subnet(req.pool_id)
        if subnet is None or req.address == subnet.gateway_ip:
            return
        await self.broker.release_address(subnet, req.address)

    # --- helpers -----------------------------------------------------------------------------

    async def _subnet(self, pool_id: str) -> Subnet | None:
        cached = self._subnets.get(pool_id)
        if cached is not None:
            return cached
        subnetpool_id, cidr = await self._resolve(pool_id)
        found = await self._neutron.query(
            "subnets", {"subnetpool_id": subnetpool_id, "cidr": str(cidr)}
        )
        if not found:
            # An existing subnet the pool adopted is in no (or another) subnetpool: it carries
            # the pool's id as a tag instead, as kuryr-libnetwork marks it.
            found = await self._neutron.query("subnets", {"cidr": str(cidr), "tags": subnetpool_id})
        if not found:
            return None
        subnet = Subnet.from_neutron(found[0])
        self._subnets[pool_id] = subnet
        return subnet

    async def _resolve(self, pool_id: str) -> tuple[str, IPNetwork]:
        """(subnetpool id, CIDR) of a PoolID. A bare subnetpool uuid (a dedicated pool, and
        every PoolID of a network kuryr-libnetwork made) stands for the pool's one prefix."""
        if not naming.is_bare_pool_id(pool_id):
            return _parse(pool_id)
        cidr = self._bare.get(pool_id)
        if cidr is None:
            pool = await self._neutron.show("subnetpools", pool_id)
            prefixes = pool.get("prefixes", []) if pool is not None else []
            if len(prefixes) != 1:
                raise NotFound(f"pool {pool_id!r} is no subnetpool with a single prefix")
            cidr = self._bare[pool_id] = ipaddress.ip_network(prefixes[0])
        return pool_id, cidr

    async def _named_pool(self, options: dict[str, str], version: int) -> Resource | None:
        uuid_key, name_key = (
            (OPT_POOL_V6_UUID, OPT_POOL_V6_NAME) if version == 6 else (OPT_POOL_UUID, OPT_POOL_NAME)
        )
        if options.get(uuid_key):
            pool = await self._neutron.show("subnetpools", options[uuid_key])
            if pool is None:
                raise NotFound(f"subnetpool {options[uuid_key]} does not exist")
        elif options.get(name_key):
            pool = await self._one_pool_named(options[name_key])
        else:
            return None
        if pool.get("ip_version") != version:
            raise InvalidRequest(f"subnetpool {pool['name']} is not IPv{version}")
        return pool

    async def _one_pool_named(self, name: str) -> Resource:
        pools = await self._neutron.query("subnetpools", {"name": name})
        if not pools:
            raise NotFound(f"subnetpool {name} does not exist")
        if len(pools) > 1:
            raise Conflict(f"{len(pools)} subnetpools are named {name}; give neutron.pool.uuid")
        return pools[0]

    async def _default_pool(self, version: int) -> Resource:
        if version not in self._defaults:
            self._defaults[version] = await self._one_pool_named(self._default_names[version])
        return self._defaults[version]

    async def _pool_for_cidr(
        self, cidr: IPNetwork, shared: bool, may_use_default: bool = True
    ) -> tuple[Resource, bool]:
        """The default pool when it contains ``cidr`` (Neutron then keeps every network of the
        pool apart), else the ``kuryrPool-<cidr>`` pool, created when missing (then True). An
        ip range never takes the default pool: kuryr-libnetwork gives each range a pool of its
        own."""
        if may_use_default:
            try:
                default = await self._default_pool(cidr.version)
            except NotFound:
                default = None
            if default is not None and cidrs.contains(default, cidr):
                return default, False
        name = naming.subnetpool_name(str(cidr))
        pools = await self._neutron.query("subnetpools", {"name": name})
        if pools:
            return pools[0], False
        # The fields kuryr-libnetwork sets; min_prefixlen stays Neutron's default as with it.
        made = await self._neutron.create(
            "subnetpools",
            {
                "name": name,
                "prefixes": [str(cidr)],
                "default_prefixlen": cidr.prefixlen,
                "shared": shared,
            },
        )
        return made, True

    async def _existing_subnet(self, options: dict[str, str], cidr: IPNetwork) -> Resource | None:
        """The existing subnet the options name for ``cidr``'s version (adoption), if any."""
        uuid = options.get(OPT_SUBNET_UUID[cidr.version])
        name = options.get(OPT_SUBNET_NAME[cidr.version])
        if uuid:
            subnet = await self._neutron.show("subnets", uuid)
            if subnet is None:
                raise NotFound(f"Neutron subnet {uuid} does not exist")
        elif name:
            found = await self._neutron.query("subnets", {"name": name})
            if not found:
                raise NotFound(f"no Neutron subnet named {name}")
            if len(found) > 1:
                key = OPT_SUBNET_UUID[cidr.version]
                raise Conflict(f"{len(found)} Neutron subnets are named {name}; give {key}")
            subnet = found[0]
        else:
            return None
        if ipaddress.ip_network(subnet["cidr"]) != cidr:
            raise InvalidRequest(f"subnet {subnet['id']} is {subnet['cidr']}, the pool is {cidr}")
        return subnet

    async def _pool_of(self, subnet: Resource | None) -> Resource | None:
        """The subnetpool an existing subnet was allocated from (None: it has none)."""
        if subnet is None or not subnet.get("subnetpool_id"):
            return None
        return await self._neutron.show("subnetpools", str(subnet["subnetpool_id"]))

    async def _check_unused(
        self, subnetpool: Resource, cidr: IPNetwork, existing: Resource | None = None
    ) -> bool:
        """Fail early on a CIDR another subnet of the pool holds, unless it is the existing
        subnet the request adopts (or, named only as a network option, a subnet of that exact
        CIDR that Kuryr did not make: CreateNetwork then adopts it or Neutron refuses, or a
        swarm network's, which a node's CreateNetwork adopts). True: it is a swarm's."""
        used = await self._neutron.query(
            "subnets",
            {"subnetpool_id": subnetpool["id"], "fields": ["id", "cidr", "name", "tags"]},
        )
        swarm = False
        for s in used:
            if existing is not None and s["id"] == existing["id"]:
                continue
            same = ipaddress.ip_network(s["cidr"]) == cidr
            if same and naming.TAG_SWARM_SUBNET in (s.get("tags") or []):
                swarm = True
                continue
            if same and not str(s.get("name") or "").startswith(naming.SUBNET_NAME_PREFIX):
                continue
            if ipaddress.ip_network(s["cidr"]).overlaps(cidr):
                raise Conflict(f"{cidr} overlaps Neutron subnet {s['id']} ({s['cidr']})")
        return swarm


def _shared(options: dict[str, str]) -> bool:
    return options.get(OPT_SHARED, "").lower() in ("1", "true", "yes", "on")


def _parse(pool_id: str) -> tuple[str, IPNetwork]:
    try:
        return naming.parse_pool_id(pool_id)
    except ValueError as exc:
        raise NotFound(f"unknown pool {pool_id!r}") from exc
