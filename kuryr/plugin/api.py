"""The two interfaces Docker calls. The server routes requests here; the domain implements them.

Each method receives a validated request model and returns a response model (or None for an
empty ``{}`` answer). Failures are raised as :mod:`kuryr.errors` exceptions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from kuryr.plugin import protocol as p


class NetworkDriver(ABC):
    @abstractmethod
    async def create_network(self, req: p.CreateNetworkRequest) -> None: ...

    @abstractmethod
    async def delete_network(self, req: p.NetworkRequest) -> None: ...

    @abstractmethod
    async def create_endpoint(self, req: p.CreateEndpointRequest) -> p.CreateEndpointResponse: ...

    @abstractmethod
    async def endpoint_oper_info(self, req: p.EndpointRequest) -> p.EndpointOperInfoResponse: ...

    @abstractmethod
    async def delete_endpoint(self, req: p.EndpointRequest) -> None: ...

    @abstractmethod
    async def join(self, req: p.JoinRequest) -> p.JoinResponse: ...

    @abstractmethod
    async def leave(self, req: p.EndpointRequest) -> None: ...

    @abstractmethod
    async def program_external_connectivity(self, req: p.ExternalConnectivityRequest) -> None: ...

    @abstractmethod
    async def revoke_external_connectivity(self, req: p.EndpointRequest) -> None: ...

    # Swarm-scope only (a driver reporting global scope): a manager allocates and frees.
    @abstractmethod
    async def allocate_network(
        self, req: p.AllocateNetworkRequest
    ) -> p.AllocateNetworkResponse: ...

    @abstractmethod
    async def free_network(self, req: p.FreeNetworkRequest) -> None: ...


class IpamDriver(ABC):
    @abstractmethod
    async def request_pool(self, req: p.RequestPoolRequest) -> p.RequestPoolResponse: ...

    @abstractmethod
    async def release_pool(self, req: p.ReleasePoolRequest) -> None: ...

    @abstractmethod
    async def request_address(self, req: p.RequestAddressRequest) -> p.RequestAddressResponse: ...

    @abstractmethod
    async def release_address(self, req: p.ReleaseAddressRequest) -> None: ...
