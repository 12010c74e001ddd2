"""The real domain as ``kuryr serve`` builds it (kuryr.driver.build), on an in-memory Neutron
and a fake binder: Docker's requests go through the two driver interfaces, as dockerd sends
them, and what the domain did shows in the fake Neutron and the binder's record."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from kuryr import naming
from kuryr.backends.binding.base import HostBinders
from kuryr.backends.neutron_api import Resource
from kuryr.backends.state import State
from kuryr.config import BindingConfig, Config, NeutronConfig, PoolConfig, ReconcileConfig
from kuryr.domain.ports.pools import Pools
from kuryr.driver import KuryrNetworkDriver, build
from kuryr.plugin import protocol as p
from kuryr.plugin.api import IpamDriver, NetworkDriver
from tests.fakes.binding import FakeBinder, FakeBinders
from tests.fakes.neutron import FakeNeutron

HOST = "vm"
DEFAULT_V4 = ("kuryr", "10.10.0.0/16", 24)
DOCKER_ADDRESS_SPACE = "LocalDefault"
KURYR_ADDRESS_SPACE = "no_address_space"
_GATEWAY = {p.OPT_REQUEST_ADDRESS_TYPE: p.REQUEST_ADDRESS_TYPE_GATEWAY}


def docker_id() -> str:
    return secrets.token_hex(32)


def default_subnetpools(neutron: FakeNeutron) -> None:
    """The subnetpool ``kuryr stack up`` makes for Kuryr IPAM."""
    name, prefix, length = DEFAULT_V4
    neutron.make("subnetpools", {"name": name, "prefixes": [prefix], "default_prefixlen": length})


def intents(state_dir: Path) -> dict[str, dict[str, object]]:
    """The intents a daemon on ``state_dir`` recorded and has not settled (kuryr.backends.state)."""
    state = State.open(state_dir)
    try:
        return state.intents()
    finally:
        state.close()


async def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Wait until background work (refills, bookkeeping, plugs ahead) made ``check`` true."""
    until = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < until, f"never happened: {what}"
        await asyncio.sleep(0.005)


@dataclass
class Net:
    docker_id: str
    pool_id: str  # Docker's PoolID (Kuryr IPAM), or the CIDR (Docker's own IPAM)
    cidr: str
    neutron_id: str
    subnet_id: str


@dataclass
class Container:
    net: Net
    endpoint_id: str
    address: str
    # What CreateEndpoint answered of the interface (None: nothing).
    interface: p.EndpointInterface | None = None


@dataclass
class Daemon:
    network: NetworkDriver
    ipam: IpamDriver
    neutron: FakeNeutron
    binder: FakeBinder
    close: Callable[[], Awaitable[None]]  # as the daemon closes the domain at shutdown
    pools: Pools

    # --- networks -----------------------------------------------------------------------------

    async def kuryr_network(
        self, cidr: str = "", options: dict[str, str] | None = None, internal: bool = False
    ) -> Net:
        """``docker network create -d kuryr --ipam-driver kuryr [--subnet cidr] [-o key=value]
        [--internal]``."""
        did = docker_id()
        pool = await self.ipam.request_pool(p.RequestPoolRequest.model_validate({"Pool": cidr}))
        gateway = await self.request_address(pool.pool_id, options=_GATEWAY)
        space = KURYR_ADDRESS_SPACE
        await self._create_network(did, space, pool.pool, f"{gateway}/32", options, internal)
        return self._net(did, pool.pool_id, pool.pool)

    async def docker_network(
        self, cidr: str, options: dict[str, str] | None = None, internal: bool = False
    ) -> Net:
        """``docker network create -d kuryr --subnet cidr`` (Docker's own IPAM)."""
        did = docker_id()
        gateway = str(next(ipaddress.ip_network(cidr).hosts()))
        await self._create_network(
            did, DOCKER_ADDRESS_SPACE, cidr, f"{gateway}/32", options, internal
        )
        return self._net(did, cidr, cidr)

    async def _create_network(
        self,
        did: str,
        space: str,
        pool: str,
        gateway: str,
        options: dict[str, str] | None = None,
        internal: bool = False,
    ) -> None:
        data = {"AddressSpace": space, "Pool": pool, "Gateway": gateway}
        # As dockerd 20.10 sends them (/work/shared/protocol): -o in the generic map, and
        # --internal as a boolean beside it.
        sent: dict[str, object] = {p.OPT_GENERIC: options or {}}
        if internal:
            sent[p.OPT_INTERNAL] = True
        request = {"NetworkID": did, "IPv4Data": [data], "IPv6Data": [], "Options": sent}
        await self.network.create_network(p.CreateNetworkRequest.model_validate(request))

    async def remove_network(self, net: Net) -> None:
        """``docker network rm``, and the removal from Neutron it leaves running in the
        background (kuryr.domain.removals) waited for."""
        await self.network.delete_network(p.NetworkRequest(network_id=net.docker_id))
        assert isinstance(self.network, KuryrNetworkDriver)
        await self.network.removals.drained()

    def _net(self, did: str, pool_id: str, cidr: str) -> Net:
        [network] = self.neutron.rows("networks", {"tags": naming.id_tag_filter(did)})
        [subnet] = self.neutron.rows("subnets", {"network_id": network["id"]})
        return Net(did, pool_id, cidr, network["id"], subnet["id"])

    # --- Docker's requests ----------------------------------------------------------------------

    async def request_address(
        self, pool_id: str, address: str = "", options: dict[str, str] | None = None
    ) -> str:
        answer = await self.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool_id, address=address, options=options or {})
        )
        return answer.address.split("/")[0]

    async def release_address(self, pool_id: str, address: str) -> None:
        await self.ipam.release_address(
            p.ReleaseAddressRequest.model_validate({"PoolID": pool_id, "Address": address})
        )

    async def create_endpoint(self, net: Net, address: str, mac: str = "") -> Container:
        """``mac``: ``docker run --mac-address``, sent in the endpoint's interface."""
        endpoint_id = docker_id()
        prefix = net.cidr.split("/")[1]
        iface = {"Address": f"{address}/{prefix}"}
        if mac:
            iface["MacAddress"] = mac
        request = {"NetworkID": net.docker_id, "EndpointID": endpoint_id, "Interface": iface}
        answer = await self.network.create_endpoint(p.CreateEndpointRequest.model_validate(request))
        return Container(net, endpoint_id, address, answer.interface)

    async def join(self, container: Container) -> p.JoinResponse:
        request = {
            "NetworkID": container.net.docker_id,
            "EndpointID": container.endpoint_id,
            "SandboxKey": "/var/run/docker/netns/fake",
        }
        return await self.network.join(p.JoinRequest.model_validate(request))

    async def run(self, net: Net) -> Container:
        """``docker run --net``: RequestAddress (Kuryr IPAM only), CreateEndpoint, Join."""
        address = await self.request_address(net.pool_id) if net.pool_id != net.cidr else ""
        if not address:
            address = self._docker_pick(net)
        container = await self.create_endpoint(net, address)
        await self.join(container)
        return container

    async def stop(self, container: Container, release: bool = True) -> None:
        """``docker rm``: Leave, DeleteEndpoint, then ReleaseAddress (Kuryr IPAM only)."""
        request = p.EndpointRequest.model_validate(
            {"NetworkID": container.net.docker_id, "EndpointID": container.endpoint_id}
        )
        await self.network.leave(request)
        await self.network.delete_endpoint(request)
        if release and container.net.pool_id != container.net.cidr:
            await self.release_address(container.net.pool_id, container.address)

    async def publish(
        self, container: Container, portmap: list[dict[str, object]], exposed: bool = True
    ) -> None:
        """ProgramExternalConnectivity for ``docker run -p``: dockerd lists the published
        container ports among the exposed ones too (``exposed``)."""
        ports = [{"Proto": m["Proto"], "Port": m["Port"]} for m in portmap] if exposed else []
        request = {
            "NetworkID": container.net.docker_id,
            "EndpointID": container.endpoint_id,
            "Options": {p.OPT_PORTMAP: portmap, p.OPT_EXPOSED_PORTS: ports},
        }
        await self.network.program_external_connectivity(
            p.ExternalConnectivityRequest.model_validate(request)
        )

    async def unpublish(self, container: Container) -> None:
        """RevokeExternalConnectivity, as dockerd sends it when the container stops."""
        request = p.EndpointRequest.model_validate(
            {"NetworkID": container.net.docker_id, "EndpointID": container.endpoint_id}
        )
        await self.network.revoke_external_connectivity(request)

    def _docker_pick(self, net: Net) -> str:
        """The lowest free address, as Docker's own IPAM hands them out (gateway first)."""
        held = {
            f["ip_address"]
            for port in self.neutron.rows("ports", {"network_id": net.neutron_id})
            if port["device_id"]
            for f in port["fixed_ips"]
        }
        hosts = list(ipaddress.ip_network(net.cidr).hosts())[1:]
        return next(str(ip) for ip in hosts if str(ip) not in held)

    # --- what Neutron holds ---------------------------------------------------------------------

    def ports(self, net: Net) -> list[Resource]:
        """Kuryr's ports on the network."""
        return self.neutron.rows(
            "ports", {"network_id": net.neutron_id, "device_owner": naming.DEVICE_OWNER}
        )

    def port_holding(self, net: Net, address: str) -> Resource | None:
        found = self.neutron.rows(
            "ports", {"fixed_ips": [f"subnet_id={net.subnet_id}", f"ip_address={address}"]}
        )
        return found[0] if found else None


def config(
    state_dir: Path,
    pool: PoolConfig | None = None,
    router: str = "",
    floating_ip_per: str = "network",
    host: str = HOST,
    scope: str = "local",
) -> Config:
    """The daemon's configuration: background work never waits for a pause in Docker's
    requests, no periodic reconciliation (it needs dockerd)."""
    quick = replace(pool or PoolConfig(), background_pause=0.0, background_longest=0.0)
    return Config(
        state_dir=state_dir,
        capability_scope=scope,
        neutron=NeutronConfig(router=router, floating_ip_per=floating_ip_per),
        binding=BindingConfig(host=host),
        pool=quick,
        reconcile=ReconcileConfig(interval=0.0),
    )


@asynccontextmanager
async def daemon(
    state_dir: Path,
    pool: PoolConfig | None = None,
    neutron: FakeNeutron | None = None,
    clock: Callable[[], float] = time.monotonic,
    router: str = "",
    floating_ip_per: str = "network",
    host: str = HOST,
    scope: str = "local",
    binders: HostBinders | None = None,
) -> AsyncIterator[Daemon]:
    """The domain built by kuryr.driver.build on ``neutron`` (a fresh fake with the default
    subnetpool when None) and a fake binder; closed as the daemon closes it. ``clock`` times
    the pools' demand; ``router``: ``[neutron] router``; ``floating_ip_per``: ``[neutron]
    floating_ip_per``; ``host``: the chassis it binds to; ``scope``: ``capability_scope``;
    ``binders``: instead of the fake binder (nested mode's binders; ``Daemon.binder`` then
    records nothing)."""
    if neutron is None:
        neutron = FakeNeutron()
        default_subnetpools(neutron)
    fake = FakeBinders(host)
    settings = config(state_dir, pool, router, floating_ip_per, host, scope)
    domain, close = await build(settings, neutron, binders or fake, clock)
    try:
        driver = domain.network
        assert isinstance(driver, KuryrNetworkDriver)
        yield Daemon(driver, domain.ipam, neutron, fake.binder, close, driver.pools)
    finally:
        await close()
