"""Composition root of the domain: config in, Docker's two driver interfaces out (with what
marks Docker busy, which the server enters for each request it serves)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from kuryr import deadline, metrics
from kuryr.backends.binding import registry
from kuryr.backends.binding.base import HostBinders, Vif
from kuryr.backends.neutron import Neutron, connect
from kuryr.backends.neutron_api import CAUSE_UNREACHABLE, NeutronApi, NeutronError
from kuryr.backends.state import State
from kuryr.config import BOOKKEEPING_IMMEDIATE, Config
from kuryr.domain.endpoints import Endpoint, Endpoints
from kuryr.domain.ipam import Ipam, PoolChoice
from kuryr.domain.lost_creates import LostCreates
from kuryr.domain.networks import Networks
from kuryr.domain.ports import status as port_status
from kuryr.domain.ports.broker import Broker
from kuryr.domain.ports.journal import Journal
from kuryr.domain.ports.mine import Mine
from kuryr.domain.ports.pools import Pools
from kuryr.domain.ports.port import Port
from kuryr.domain.ports.prewire import Prewire
from kuryr.domain.published import Published
from kuryr.domain.quiet import Quiet
from kuryr.domain.removals import Removals, colliding, pool_cidrs
from kuryr.domain.routers import Routers
from kuryr.domain.security_groups import SecurityGroups
from kuryr.domain.swarm import Swarm
from kuryr.domain.yielding import Yielding
from kuryr.errors import BackendError
from kuryr.ops import admin_api, admin_reports, admin_server, healing
from kuryr.plugin import protocol as p
from kuryr.plugin.api import NetworkDriver
from kuryr.plugin.server import Domain

LOG = logging.getLogger(__name__)


class KuryrNetworkDriver(NetworkDriver):
    """Thin handlers: each request goes to one domain object."""

    def __init__(
        self,
        networks: Networks,
        endpoints: Endpoints,
        security_groups: SecurityGroups,
        published: Published,
        pools: Pools,
        removals: Removals,
        watch: port_status.PortStatus,
        swarm: Swarm | None,
    ) -> None:
        self.networks = networks
        # Only with capability_scope = global: a local-scope driver is never asked, and one
        # asked all the same (a stray request) agrees and makes nothing, as before Swarm.
        self.swarm = swarm
        self.endpoints = endpoints
        self.security_groups = security_groups
        self.published = published
        self.pools = pools
        self.removals = removals
        # The daemon's reconciliation passes (kuryr.ops.healing), once build has made them.
        self.healer: healing.Healer | None = None
        # Neutron status of the ports of joined containers (kuryr.domain.ports.status).
        self.watch = watch

    async def create_network(self, req: p.CreateNetworkRequest) -> None:
        # A removal DeleteNetwork left running may still hold the CIDRs or the Neutron network.
        await self.removals.settled(
            colliding(req), pool_cidrs(req), f"network {req.network_id[:12]}"
        )
        network = await self.networks.create(req)
        if not p.is_swarm_id(req.network_id):
            # A swarm network's addresses all come from the manager's allocation: no pools.
            await self.pools.network_created(network, req)

    async def allocate_network(self, req: p.AllocateNetworkRequest) -> p.AllocateNetworkResponse:
        if self.swarm is None:
            return p.AllocateNetworkResponse()
        return await self.swarm.allocate(req)

    async def free_network(self, req: p.FreeNetworkRequest) -> None:
        if self.swarm is not None:
            await self.swarm.free(req)

    async def delete_network(self, req: p.NetworkRequest) -> None:
        """Answer once the removal is journaled: dockerd forgets the network whatever the
        answer, and the removal (pool ports side by side, subnets, the network) goes on in the
        background, retried until it succeeds and resumed after a restart
        (kuryr.domain.removals). What comes next and collides with it waits for it there."""
        self.removals.submit(req.network_id)

    async def remove(self, docker_id: str) -> None:
        """One attempt at removing a network from Neutron (the removal kuryr.domain.removals
        runs, logs and retries; its Neutron calls give way to Docker's requests there)."""
        network = await self.networks.find(docker_id)
        if network is not None:
            await self.pools.remove_network(network)
        await self.networks.delete(docker_id)

    async def create_endpoint(self, req: p.CreateEndpointRequest) -> p.CreateEndpointResponse:
        return await self.endpoints.create(req)

    async def endpoint_oper_info(self, req: p.EndpointRequest) -> p.EndpointOperInfoResponse:
        endpoint = await self.endpoints.get(req.endpoint_id, req.network_id)
        return self.endpoints.oper_info(endpoint)

    async def delete_endpoint(self, req: p.EndpointRequest) -> None:
        gone = await self.endpoints.delete(req, self.revoke)
        if gone is not None:
            self.watch.left(gone.port_id)

    async def join(self, req: p.JoinRequest) -> p.JoinResponse:
        answer = await self.endpoints.join(req)
        endpoint = await self.endpoints.get(req.endpoint_id, req.network_id)
        self.watch.joined(endpoint.port_id)
        return answer

    async def leave(self, req: p.EndpointRequest) -> None:
        """Nothing to undo yet: Docker moves the container end out of the sandbox after this
        answer, and DeleteEndpoint decides whether the VIF serves the port's next container
        (kuryr.domain.ports.prewire)."""

    async def program_external_connectivity(self, req: p.ExternalConnectivityRequest) -> None:
        """``-p`` ports forwarded from a floating IP, and the exposed and published ports
        opened in the port's security groups; a failure leaves neither."""
        endpoint = await self.endpoints.get(req.endpoint_id, req.network_id)
        network = await self.networks.get(req.network_id)
        made = await self.published.program(endpoint, network, req.options)
        try:
            await self.security_groups.program(
                endpoint, req.options, [(f["protocol"], f["internal_port"]) for f in made]
            )
        except BaseException:
            with deadline.cleanup():
                await self.published.revoke(endpoint)
            raise

    async def revoke_external_connectivity(self, req: p.EndpointRequest) -> None:
        endpoint = await self.endpoints.find(req.endpoint_id, req.network_id)
        if endpoint is not None:
            await self.revoke(endpoint)

    async def revoke(self, endpoint: Endpoint) -> None:
        """What ProgramExternalConnectivity made goes (at DeleteEndpoint too: a stop the
        daemon missed, or reconciliation, sends no RevokeExternalConnectivity)."""
        await self.published.revoke(endpoint)
        await self.security_groups.revoke(endpoint)


async def _authenticate(neutron: Neutron) -> None:
    """Credentials Keystone refuses stop the start: no retry can mend them. A Keystone that
    does not answer does not: dockerd must find the socket (it restores containers at its
    start), and keystoneauth tries again at each Neutron call. One line either way."""
    try:
        await neutron.authenticate()
    except NeutronError as exc:
        if exc.cause != CAUSE_UNREACHABLE:
            raise
        LOG.error("%s; serving anyway, Neutron calls fail until Keystone answers", exc)


async def build(
    config: Config,
    neutron: NeutronApi | None = None,
    binders: HostBinders | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Domain, Callable[[], Awaitable[None]]]:
    """What the server serves, and the coroutine function that unwinds what was built.

    ``neutron`` and ``binders`` are made from ``config`` unless given (tests pass fakes);
    what is given stays the caller's to close. ``clock`` times the pools' demand (tests
    pass one they move)."""
    async with AsyncExitStack() as undo:
        if neutron is None:
            client = connect(config.neutron, metrics.neutron_call)
            await _authenticate(client)
            neutron = client
        state = State.open(config.state_dir)
        undo.callback(state.close)
        loaded: registry.Binders | None = None
        if binders is None:
            # Nested binders call Neutron on the start path: the client itself, not Yielding.
            binders = loaded = await _load_binders(config, undo, neutron, state)
        quiet = Quiet(config.pool.background_pause, config.pool.background_longest)
        # Calls made by background work that gives way to Docker wait for a pause first.
        neutron = Yielding(neutron, quiet)
        removals = Removals(state)
        journal = Journal(state, neutron, config.pool.bookkeeping_delay, quiet=quiet)
        undo.push_async_callback(journal.stop)
        prewire = Prewire(
            binders,
            functools.partial(_mtu_of, state),
            config.neutron.vif_plugging_timeout,
            deleted=journal.deleted,
        )
        undo.push_async_callback(prewire.close)
        journal.unplug_first = prewire.unplug_by_id
        # Which ports are this host's: one answer for pools, broker and networks.
        mine = Mine.of(binders)
        pools = Pools(state, neutron, journal, mine, config.pool, prewire, quiet, clock=clock)
        undo.push_async_callback(pools.close)
        ipam = Ipam(
            neutron,
            Broker(neutron, mine, state, pools, prewire, functools.partial(_port_mac, binders)),
            removals,
            config.neutron.default_subnetpool_v4,
            config.neutron.default_subnetpool_v6,
        )
        _known_subnets(ipam, state)
        # Creates of a CreateNetwork that failed (or of a killed daemon's) are cleaned up.
        lost = LostCreates(state, neutron)
        undo.push_async_callback(lost.stop)
        lost.resume()
        networks = Networks(
            neutron,
            ipam,
            mine,
            config.neutron.enable_dhcp,
            state=state,
            routers=Routers(neutron, config.neutron.router),
            lost=lost,
        )
        endpoints = Endpoints(
            neutron,
            networks,
            ipam,
            binders,
            config.neutron.vif_plugging_timeout,
            config.binding.veth_dst_prefix,
            bookkeeping=journal,
            prewire=prewire,
            immediate=config.pool.bookkeeping == BOOKKEEPING_IMMEDIATE,
        )
        groups = SecurityGroups(neutron, binders)
        watch = port_status.PortStatus(
            neutron,
            state,
            binders,
            functools.partial(_vif_of, state),
            config.neutron.port_active_timeout,
            config.neutron.vif_plugging_timeout,
        )
        # A port whose VIF changes has its Neutron status read again at its next join; one
        # plugged ahead has it read along with other ports before its first join.
        prewire.rewired = watch.rewired
        prewire.plugged = watch.plugged_ahead
        published = Published(neutron, state, config.neutron.floating_ip_per)
        swarm = Swarm(neutron, networks, ipam) if config.capability_scope == "global" else None
        driver = KuryrNetworkDriver(
            networks, endpoints, groups, published, pools, removals, watch, swarm
        )
        await pools.load()
        pools.start()
        journal.start()
        # Stopped before the journal and pools it uses; what is unfinished stays recorded.
        undo.push_async_callback(removals.stop)
        removals.start(driver.remove)
        undo.push_async_callback(watch.stop)
        watch.start()
        # Reconciliation runs beside serving, its first pass a few seconds after the start:
        # dockerd may be waiting for this daemon. Stopped first, before what it releases with.
        local = healing.DaemonSide(state, ipam, pools, endpoints, driver.revoke, journal)
        # The passes unplug through the serving binders: two binders of one VM port would
        # write its pairs at once, and Neutron can lose one of two writes of one revision
        # (kuryr.backends.binding.macvlan). Binders a caller gave (tests) stay the caller's.
        driver.healer = healing.Healer(config, neutron, local, quiet, loaded)
        undo.push_async_callback(driver.healer.stop)
        driver.healer.start()
        await undo.enter_async_context(
            admin_server.serving(
                admin_api.socket_path(config.state_dir),
                pools,
                functools.partial(admin_reports.snapshot, state, pools),
                functools.partial(
                    admin_reports.describe, state, functools.partial(port_status.describe, state)
                ),
            )
        )
        owned = undo.pop_all()

    async def close() -> None:
        await owned.aclose()

    return Domain(driver, ipam, quiet.serving, config.capability_scope), close


async def _load_binders(
    config: Config, undo: AsyncExitStack, neutron: NeutronApi, state: State
) -> registry.Binders:
    binders = await registry.load(config.binding, neutron, state)
    undo.push_async_callback(binders.close)
    return binders


def _port_mac(binders: HostBinders, device_mac: str) -> str:
    """The MAC of a port made for Docker's ``--mac-address``: the binder of a port not made
    yet is asked as Endpoints asks it (a nested binder serves every vif_type)."""
    try:
        return binders.for_vif_type("ovs").port_mac(device_mac)
    except BackendError:
        return device_mac


def _mtu_of(state: State, neutron_id: str) -> int | None:
    return next((n.mtu for n in state.networks() if n.neutron_id == neutron_id), None)


def _vif_of(state: State, port_id: str) -> Vif | None:
    """The VIF of the endpoint holding ``port_id``, from the local state."""
    for endpoint_id, (network_id, raw) in state.endpoints().items():
        held = Port.from_neutron(raw)
        if held.id == port_id:
            network = state.network(network_id)
            return held.vif(endpoint_id, network.mtu if network else 1500)
    return None


def _known_subnets(ipam: Ipam, state: State) -> None:
    """Tell IPAM the subnets the local state knows, so RequestAddress after a restart needs
    no Neutron lookup (a PoolID is ``<subnetpool>/<cidr>``)."""
    for network in state.networks():
        for subnet in network.subnets:
            if subnet.subnetpool_id:
                ipam.subnet_created(PoolChoice(subnet.subnetpool_id, subnet.cidr), subnet)
