"""Reconciliation: what this host made in Neutron, OVS and the kernel against what is in use.

Sources, each read once per run:

- Neutron: the ports this host owns (``device_owner=compute:kuryr``, marked as this host's:
  kuryr.domain.ports.mine), Kuryr's expose security groups, Kuryr's floating IPs and their
  port forwardings, ``kuryrPool-*`` subnetpools, Kuryr networks;
- OVS: the interfaces Kuryr plugged (they carry its owner marker and the port id);
- the kernel: host-side veths named like Kuryr's (``tap`` + the first 11 characters of a port
  id);
- dockerd (optional): the endpoints of running containers on Kuryr networks, and its networks.

What is in use is kept: a port whose endpoint Docker lists, a pool port (empty device_id and the
pool tag or pool port name, :attr:`kuryr.domain.ports.port.Port.in_pool`), and anything younger than
``grace`` seconds (a start or stop may be under way: Docker lists an endpoint only once it has
joined). What is orphaned is removed: a port whose endpoint Docker does not list; an address
reservation (a port with no device_id, outside any pool) no endpoint holds; an OVS interface or
a veth whose port is gone or orphaned; an expose group whose endpoint has no port; a ``-p``
port forwarding whose endpoint holds no port, and a Kuryr floating IP nothing live is published
on (kuryr.ops.reconcile_published); a
``kuryrPool-*`` subnetpool no subnet uses. What is half-made is finished: a port Docker's
endpoint holds (same network, same address) whose bookkeeping (device_id, name, tags) was never
written, or still names the endpoint that held it before, gets it. Writes are conditional on the
port's device_id when planned: one the daemon handed on meanwhile is left to the daemon.

Without dockerd's view no port is judged, only what is orphaned by Neutron's own account.
Networks are judged only when asked (``networks=True``): a Docker network id is local to
one dockerd, so this is safe only where this host is the only Docker host of its Neutron
project.

Inside the daemon (kuryr.ops.healing) a :class:`Local` view adds what only the daemon knows: the
ports judged are those of its own networks that dockerd has (a network made through the socket
by anything but dockerd is not dockerd's to judge), a port with work in flight is kept, and a
port the daemon holds is reclaimed through its own release path, which keeps its local state,
its pools and the port's VIF right.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from kuryr import naming
from kuryr.backends import dockerd
from kuryr.backends.binding import registry
from kuryr.backends.neutron import connect
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.backends.state import State
from kuryr.config import BINDING_MACVLAN, Config
from kuryr.domain import sharing
from kuryr.domain.ports.broker import hand_back
from kuryr.domain.ports.mine import Mine
from kuryr.domain.ports.port import Port
from kuryr.ops import reconcile_plan
from kuryr.ops.reconcile_docker import DockerView, docker_view
from kuryr.ops.reconcile_neutron import age, judge_groups, judge_networks, judge_subnetpools
from kuryr.ops.reconcile_plan import Plan
from kuryr.ops.reconcile_published import judge_floating_ips
from kuryr.ops.reconcile_vifs import judge_vifs

DEFAULT_GRACE = 60.0
# Conditional writes of one port action: the revision moves under it (OVN status) now and then.
_GUARD_TRIES = 5

Reclaim = Callable[[], Awaitable[Any]]


class Local(Protocol):
    """What the serving daemon knows that Neutron and dockerd do not show (kuryr.ops.healing)."""

    def networks(self) -> dict[str, str]:
        """Neutron network id -> Docker network id of the daemon's networks (none being
        removed)."""
        ...

    def endpoints(self) -> set[str]:
        """The endpoints in the daemon's local state."""
        ...

    def busy(self, port: Port) -> bool:
        """The daemon has work in flight on the port, or keeps it free in a pool and Neutron
        agrees (no device_id)."""
        ...

    def idle_taken(self, port_id: str) -> bool:
        """A pool port taken out of its pool that no endpoint and no reservation holds."""
        ...

    def reclaimer(self, port: Port) -> Reclaim | None:
        """The daemon's own way to release ``port`` (None: the daemon does not hold it)."""
        ...


class Reconciler:
    def __init__(
        self,
        neutron: NeutronApi,
        binders: registry.Binders,
        docker_socket: Path = dockerd.SOCKET,
        grace: float = DEFAULT_GRACE,
        scope: frozenset[str] | None = None,
        local: Local | None = None,
    ) -> None:
        """``scope``: judge only the ports on these Neutron networks (and no networks).
        ``local``: the serving daemon's view; the ports judged are then those of its networks
        that dockerd has, and subnetpools and networks are not judged."""
        self._scope = scope
        self._local = local
        self._neutron = neutron
        self._binders = binders
        self._mine = Mine.of(binders)
        self._docker_socket = docker_socket
        self._grace = grace

    async def plan(self, networks: bool = False) -> Plan:
        """Survey everything and decide; nothing is changed."""
        plan = Plan()
        now = time.time()
        docker = await docker_view(self._docker_socket)
        plan.docker_seen = docker is not None
        mark = await self._mine.mark()
        found = await self._neutron.query("ports", mark.query())
        ports = [port for port in map(Port.from_neutron, found) if mark.owns(port)]
        scope = self._scope
        docker_of: dict[str, str | None]
        if self._local is not None:
            docker_of = dict(self._local.networks())
            dockers = docker.networks if docker is not None else frozenset()
            scope = frozenset(n for n, d in docker_of.items() if d in dockers)
        else:
            docker_of = await sharing.docker_networks(self._neutron, mark)
        in_use = self._judge_ports(plan, ports, docker, docker_of, now, scope)
        port_ids = {port.id for port in ports}
        await judge_vifs(plan, self._binders, self._neutron, port_ids, set(in_use))
        endpoints = {port.device_id for port in ports}
        if self._local is not None:
            # Endpoints whose device_id the journal has not written yet.
            endpoints |= self._local.endpoints()
        await judge_groups(plan, self._neutron, endpoints, now, self._grace)
        await judge_floating_ips(plan, self._neutron, endpoints, now, self._grace)
        if self._scope is None and self._local is None:
            # Subnetpools belong to no network: a run scoped to networks leaves them alone.
            await judge_subnetpools(plan, self._neutron, now, self._grace)
        if networks and docker is not None and self._scope is None and self._local is None:
            await judge_networks(plan, self._neutron, mark.name, docker, now, self._grace)
        return plan

    async def apply(self, plan: Plan) -> list[str]:
        """Carry the plan out in order; returns the failures (each also logged)."""
        return await reconcile_plan.apply(plan)

    # --- ports ---------------------------------------------------------------------------

    def _judge_ports(
        self,
        plan: Plan,
        ports: list[Port],
        docker: DockerView | None,
        docker_of: dict[str, str | None],
        now: float,
        scope: frozenset[str] | None,
    ) -> dict[str, str | None]:
        """Decide each port; returns the ports kept, each with the endpoint that holds it
        ("" a free pool port; None when not judged: young, out of scope, busy in the daemon,
        reclaimed by the daemon (which sees to its VIF), or no dockerd)."""
        kept: dict[str, str | None] = {}
        held = docker.held_addresses() if docker is not None else {}
        for port in ports:
            endpoint_id = port.device_id
            young = age(port.to_neutron(), now) < self._grace
            outside = scope is not None and port.network_id not in scope
            busy = self._local is not None and self._local.busy(port)
            if young or outside or busy or docker is None:
                kept[port.id] = None
                plan.keep("port")
                continue
            if endpoint_id:
                # A port the daemon handed to a running endpoint after its last holder left:
                # Neutron still names the old endpoint until the journal writes the new one.
                owner = self._holder(port, held, docker_of)
                if endpoint_id in docker.endpoints:
                    kept[port.id] = endpoint_id
                    plan.keep("port")
                elif owner is not None:
                    why = f"device_id still {endpoint_id[:12]}'s"
                    kept[port.id] = self._rebook(plan, port, owner, why)
                else:
                    why = f"endpoint {endpoint_id[:12]} is not on any running container"
                    self._orphan(plan, kept, "port", port, why)
                continue
            # A running endpoint's address decides before the pool look: a pool port handed
            # to a container whose bookkeeping was never written still looks pooled.
            owner = self._holder(port, held, docker_of)
            if owner is None and port.in_pool:
                if self._local is not None and self._local.idle_taken(port.id):
                    why = "taken from its pool, held by no endpoint or reservation"
                    self._orphan(plan, kept, "pool-port", port, why)
                    continue
                kept[port.id] = ""
                plan.keep("port")
            elif owner is not None:
                why = "device_id and tags never written"
                kept[port.id] = self._rebook(plan, port, owner, why)
            else:
                ips = ", ".join(port.ips)
                why = f"reservation of {ips} that no endpoint holds"
                self._orphan(plan, kept, "address", port, why)
        return kept

    def _orphan(
        self, plan: Plan, kept: dict[str, str | None], kind: str, port: Port, why: str
    ) -> None:
        """Plan the port's release: by the daemon when it holds the port (its VIF then stays
        the daemon's to keep or unplug: the port counts as kept for the VIF judgement), else
        in Neutron."""
        mark = port.device_id
        reclaim = self._local.reclaimer(port) if self._local is not None else None
        if reclaim is not None:
            kept[port.id] = None
            plan.add(kind, port.id, why, reclaim, mark)
            return
        plan.add(kind, port.id, why, self._port_remover(port), mark)

    def _rebook(self, plan: Plan, port: Port, owner: str, why: str) -> str:
        """The port is ``owner``'s, Neutron does not say so yet: write its bookkeeping."""
        held = f"held by endpoint {owner[:12]}, {why}"
        plan.add("bookkeeping", port.id, held, self._bookkeeper(port, owner))
        return owner

    @staticmethod
    def _holder(
        port: Port,
        held: dict[tuple[str, str], str],
        docker_of: dict[str, str | None],
    ) -> str | None:
        network = docker_of.get(port.network_id)
        if network is None:
            return None
        for ip in port.ips:
            owner = held.get((network, ip))
            if owner is not None:
                return owner
        return None

    def _guarded(
        self, port: Port, write: Callable[[int | None], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        """``write`` (given the revision it must find) as long as the port's device_id is
        what the plan judged: the daemon's journal may meanwhile have handed the port to a new
        endpoint, and that port must not be cleaned or deleted. Other changes (its status as
        OVN sees it, a tag) bump the revision too: re-read, and go on if device_id is the
        same."""

        async def guarded() -> None:
            current = port
            for _ in range(_GUARD_TRIES - 1):
                try:
                    await write(current.revision_number)
                    return
                except NeutronError as exc:
                    if not exc.stale:
                        raise
                shown = await self._neutron.show("ports", port.id)
                if shown is None:
                    return
                fresh = Port.from_neutron(shown)
                if fresh.device_id != port.device_id:
                    raise NeutronError(f"port {port.id} now has device_id {fresh.device_id!r}", 412)
                current = fresh
            await write(current.revision_number)

        return guarded

    def _port_remover(self, port: Port) -> Callable[[], Awaitable[Any]]:
        async def remove(revision: int | None) -> None:
            if naming.POOL_TAG in port.tags:
                # A pool port its container left without cleaning: back to waiting in its
                # pool, as the daemon's own release would leave it (the daemon may still
                # count it, so it must keep existing).
                await self._neutron.update(
                    "ports",
                    port.id,
                    {"device_id": "", "name": naming.POOL_PORT_NAME},
                    revision=revision,
                )
                tags = naming.without_kuryr_tags(port.tags)
                await self._neutron.set_tags("ports", port.id, tags)
                return
            if port.adopted:
                # Made by hand and adopted: handed back as it was found, never deleted.
                await hand_back(self._neutron, port, revision)
                return
            await self._neutron.delete("ports", port.id, revision=revision)

        return self._guarded(port, remove)

    def _bookkeeper(self, port: Port, endpoint_id: str) -> Callable[[], Awaitable[Any]]:
        async def finish(revision: int | None) -> None:
            await self._neutron.update(
                "ports",
                port.id,
                {"device_id": endpoint_id, "name": naming.port_name(endpoint_id)},
                revision=revision,
            )
            # Any earlier endpoint's id tags go: one endpoint's tags on a port.
            earlier = set(naming.id_tags(port.device_id))
            tags = [t for t in port.tags if t not in earlier]
            await self._neutron.set_tags("ports", port.id, [*tags, *naming.id_tags(endpoint_id)])

        return self._guarded(port, finish)


async def run_once(
    reconciler: Reconciler, apply: bool, networks: bool = False
) -> tuple[Plan, list[str]]:
    plan = await reconciler.plan(networks)
    errors = await reconciler.apply(plan) if apply else []
    return plan, errors


@asynccontextmanager
async def opened(
    config: Config,
    docker_socket: Path = dockerd.SOCKET,
    grace: float = DEFAULT_GRACE,
    scope: frozenset[str] | None = None,
    local: Local | None = None,
    neutron: NeutronApi | None = None,
    binders: registry.Binders | None = None,
) -> AsyncIterator[Reconciler]:
    """A reconciler with its own Neutron client and binders unless given them; what is given
    stays the caller's. The serving daemon gives its own binders: a nested binder is then the
    one writer of the VM port's pairs and subports (kuryr.backends.binding.macvlan)."""
    neutron = neutron or connect(config.neutron)
    async with AsyncExitStack() as owned:
        if binders is None:
            state = None
            if config.binding.driver == BINDING_MACVLAN:
                # The daemon's record of the pairs it wrote on the VM's port (MacvlanBinder).
                state = State.open(config.state_dir)
                owned.callback(state.close)
            binders = await registry.load(config.binding, neutron, state)
            owned.push_async_callback(binders.close)
        yield Reconciler(neutron, binders, docker_socket, grace, scope, local)
