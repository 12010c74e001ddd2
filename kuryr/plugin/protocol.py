"""Typed models of Docker's libnetwork remote NetworkDriver and IpamDriver protocols.

Field names follow the wire format (Docker's Go structs); Python names are snake_case with
aliases. Requests are validated strictly enough to reject garbage, but unknown keys are
ignored because newer dockerd versions add fields.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

DOCKER_ID_RE = re.compile(r"^[0-9a-f]{64}$")
# swarmkit's network ids (25 base-36 characters): a node's dockerd uses them as they are.
SWARM_ID_RE = re.compile(r"^[0-9a-z]{25}$")
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")

# Option keys dockerd sends.
OPT_GENERIC = "com.docker.network.generic"
OPT_ENABLE_IPV6 = "com.docker.network.enable_ipv6"
OPT_INTERNAL = "com.docker.network.internal"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_PORTMAP = "com.docker.network.portmap"
OPT_EXPOSED_PORTS = "com.docker.network.endpoint.exposedports"
OPT_MAC_ADDRESS = "com.docker.network.endpoint.macaddress"
OPT_REQUEST_ADDRESS_TYPE = "RequestAddressType"
# Set by swarmkit's allocator (on the manager) on every RequestAddress it makes; dockerd's own
# requests never carry it.
OPT_IPAM_SERIAL = "com.docker.network.ipam.serial"
REQUEST_ADDRESS_TYPE_GATEWAY = "com.docker.network.gateway"


def _docker_id(value: str) -> str:
    if not DOCKER_ID_RE.match(value):
        raise ValueError("must be a 64-character lowercase hex Docker id")
    return value


DockerId = Annotated[str, AfterValidator(_docker_id)]


def _network_id(value: str) -> str:
    if not (DOCKER_ID_RE.match(value) or SWARM_ID_RE.match(value)):
        raise ValueError("must be a 64-character lowercase hex Docker id or a swarm network id")
    return value


NetworkId = Annotated[str, AfterValidator(_network_id)]
SwarmId = Annotated[str, Field(pattern=SWARM_ID_RE.pattern)]


def is_swarm_id(network_id: str) -> bool:
    return bool(SWARM_ID_RE.match(network_id))


def _cidr_or_empty(value: str) -> str:
    if value:
        ipaddress.ip_interface(value)
    return value


# Neutron's default min_prefixlen of an IPv4 subnetpool: a wider prefix is refused.
MIN_POOL_PREFIX_V4 = 8
# The smallest MTU an IPv4 link may have; Neutron refuses less. Its largest depends on the
# Neutron network's segments: Neutron itself refuses more (kuryr.domain.networks turns it into 400).
MIN_MTU = 68
MAX_MTU = 65535


def _mtu_value(value: Any) -> int:
    """The MTU Docker asked for, as Neutron takes it."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not MIN_MTU <= int(text) <= MAX_MTU:
        raise ValueError(f"{OPT_MTU} must be an integer from {MIN_MTU} to {MAX_MTU}, got {value!r}")
    return int(text)


# Neutron refuses these as a port's MAC ("is not a valid MAC address").
_UNUSABLE_MACS = ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff")


def _mac_or_empty(value: str) -> str:
    """A MAC address Neutron takes for a port, or empty (Neutron picks one)."""
    if value and not MAC_RE.match(value):
        raise ValueError("must be a MAC address like 02:42:ac:11:00:02")
    if value.lower() in _UNUSABLE_MACS:
        raise ValueError(f"{value} cannot be an interface's MAC address")
    return value


def _network_or_empty(value: str) -> str:
    """A pool Kuryr makes a Neutron subnet of: a network address, as Neutron takes it."""
    if value:
        try:
            ipaddress.ip_network(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a network CIDR like 10.1.0.0/16: {exc}") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    def wire(self) -> dict[str, Any]:
        """The JSON body Docker expects: wire names, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


# --- Plugin ------------------------------------------------------------------------------


class ActivateResponse(_Model):
    implements: list[str] = Field(alias="Implements")


# --- NetworkDriver -----------------------------------------------------------------------


class CapabilitiesResponse(_Model):
    scope: str = Field(alias="Scope")
    connectivity_scope: str = Field(alias="ConnectivityScope")


class IPAMData(_Model):
    address_space: str = Field("", alias="AddressSpace")
    pool: str = Field(alias="Pool")
    gateway: str = Field("", alias="Gateway")
    aux_addresses: dict[str, str] = Field(default_factory=dict, alias="AuxAddresses")

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: str) -> str:
        ipaddress.ip_network(v, strict=False)
        return v

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, v: str) -> str:
        return _cidr_or_empty(v)

    @field_validator("aux_addresses", mode="before")
    @classmethod
    def _aux(cls, v: Any) -> Any:
        return {} if v is None else v

    @field_validator("aux_addresses")
    @classmethod
    def _aux_are_addresses(cls, v: dict[str, str]) -> dict[str, str]:
        for name, address in v.items():
            if not address:
                raise ValueError(f"aux address {name!r} is empty")
            ipaddress.ip_interface(address)
        return v

    @model_validator(mode="after")
    def _gateway_on_pool(self) -> IPAMData:
        # Neutron refuses such a subnet ("Gateway is not valid on subnet"); Docker's own
        # IPAM never sends one.
        if not self.gateway:
            return self
        pool = ipaddress.ip_network(self.pool, strict=False)
        gateway = ipaddress.ip_interface(self.gateway).ip
        if gateway.version != pool.version or gateway not in pool:
            raise ValueError(f"gateway {gateway} is not in pool {pool}")
        if pool.version == 4 and pool.prefixlen < 31 and gateway == pool.network_address:
            raise ValueError(f"gateway {gateway} is the network address of pool {pool}")
        return self


class CreateNetworkRequest(_Model):
    network_id: NetworkId = Field(alias="NetworkID")
    options: dict[str, Any] = Field(default_factory=dict, alias="Options")
    ipv4_data: list[IPAMData] = Field(default_factory=list, alias="IPv4Data")
    ipv6_data: list[IPAMData] = Field(default_factory=list, alias="IPv6Data")

    @field_validator("options", mode="before")
    @classmethod
    def _no_options(cls, v: Any) -> Any:
        return {} if v is None else v

    @field_validator("options")
    @classmethod
    def _generic_is_object(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Checked here so a bad request is rejected before it reaches the domain.
        if not isinstance(v.get(OPT_GENERIC) or {}, dict):
            raise ValueError(f"{OPT_GENERIC} must be an object")
        return v

    @field_validator("ipv4_data", "ipv6_data", mode="before")
    @classmethod
    def _no_data(cls, v: Any) -> Any:
        return [] if v is None else v

    @field_validator("options")
    @classmethod
    def _mtu(cls, v: dict[str, Any]) -> dict[str, Any]:
        mtu = v.get(OPT_MTU)
        if mtu not in (None, "", 0, "0"):
            _mtu_value(mtu)
        return v

    @property
    def generic_options(self) -> dict[str, str]:
        """The user's ``-o key=value`` options."""
        generic = self.options.get(OPT_GENERIC) or {}
        if not isinstance(generic, dict):
            raise ValueError(f"{OPT_GENERIC} must be an object")
        return {str(k): str(v) for k, v in generic.items()}


class NetworkRequest(_Model):
    """DeleteNetwork and FreeNetwork."""

    network_id: NetworkId = Field(alias="NetworkID")


class EndpointInterface(_Model):
    address: str = Field("", alias="Address")
    address_ipv6: str = Field("", alias="AddressIPv6")
    mac_address: str = Field("", alias="MacAddress")

    @field_validator("address", "address_ipv6")
    @classmethod
    def _addr(cls, v: str) -> str:
        return _cidr_or_empty(v)

    @field_validator("mac_address")
    @classmethod
    def _mac(cls, v: str) -> str:
        return _mac_or_empty(v)


class CreateEndpointRequest(_Model):
    network_id: NetworkId = Field(alias="NetworkID")
    endpoint_id: DockerId = Field(alias="EndpointID")
    interface: EndpointInterface | None = Field(None, alias="Interface")
    options: dict[str, Any] = Field(default_factory=dict, alias="Options")

    @field_validator("options", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class CreateEndpointResponse(_Model):
    """Only fields Docker left empty may be filled; echoing set ones makes Docker roll back."""

    interface: EndpointInterface | None = Field(None, alias="Interface")

    def wire(self) -> dict[str, Any]:
        if self.interface is None:
            return {}
        filled = {k: v for k, v in self.interface.wire().items() if v}
        return {"Interface": filled} if filled else {}


class EndpointRequest(_Model):
    """EndpointOperInfo, DeleteEndpoint, Leave, RevokeExternalConnectivity."""

    network_id: NetworkId = Field(alias="NetworkID")
    endpoint_id: DockerId = Field(alias="EndpointID")


class EndpointOperInfoResponse(_Model):
    value: dict[str, Any] = Field(default_factory=dict, alias="Value")


class JoinRequest(_Model):
    network_id: NetworkId = Field(alias="NetworkID")
    endpoint_id: DockerId = Field(alias="EndpointID")
    sandbox_key: str = Field(alias="SandboxKey")
    options: dict[str, Any] = Field(default_factory=dict, alias="Options")

    @field_validator("options", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class InterfaceName(_Model):
    src_name: str = Field(alias="SrcName")
    dst_prefix: str = Field(alias="DstPrefix")


class StaticRoute(_Model):
    destination: str = Field(alias="Destination")
    route_type: int = Field(alias="RouteType")  # 0: via next hop, 1: connected
    next_hop: str | None = Field(None, alias="NextHop")


class JoinResponse(_Model):
    interface_name: InterfaceName = Field(alias="InterfaceName")
    gateway: str | None = Field(None, alias="Gateway")
    gateway_ipv6: str | None = Field(None, alias="GatewayIPv6")
    static_routes: list[StaticRoute] | None = Field(None, alias="StaticRoutes")
    disable_gateway_service: bool | None = Field(None, alias="DisableGatewayService")


class ExternalConnectivityRequest(_Model):
    """ProgramExternalConnectivity."""

    network_id: NetworkId = Field(alias="NetworkID")
    endpoint_id: DockerId = Field(alias="EndpointID")
    options: dict[str, Any] = Field(default_factory=dict, alias="Options")

    @field_validator("options", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class DiscoveryRequest(_Model):
    """DiscoverNew and DiscoverDelete: node discovery, irrelevant to a local-scope driver."""

    discovery_type: int = Field(alias="DiscoveryType")
    discovery_data: Any = Field(None, alias="DiscoveryData")


class AllocateNetworkRequest(_Model):
    """Swarm-scope only: the manager allocates a network (kuryr.domain.swarm)."""

    network_id: SwarmId = Field(alias="NetworkID")
    options: dict[str, str] = Field(default_factory=dict, alias="Options")
    ipv4_data: list[IPAMData] = Field(default_factory=list, alias="IPv4Data")
    ipv6_data: list[IPAMData] = Field(default_factory=list, alias="IPv6Data")

    @field_validator("options", mode="before")
    @classmethod
    def _no_options(cls, v: Any) -> Any:
        return {} if v is None else v

    @field_validator("ipv4_data", "ipv6_data", mode="before")
    @classmethod
    def _no_data(cls, v: Any) -> Any:
        # swarmkit sends null for what it has none of (IPv6Data always).
        return [] if v is None else v


class FreeNetworkRequest(_Model):
    """Swarm-scope only, like AllocateNetwork."""

    network_id: SwarmId = Field(alias="NetworkID")


class AllocateNetworkResponse(_Model):
    options: dict[str, str] = Field(default_factory=dict, alias="Options")


# --- IpamDriver --------------------------------------------------------------------------


class IpamCapabilitiesResponse(_Model):
    requires_mac_address: bool = Field(alias="RequiresMACAddress")
    requires_request_replay: bool = Field(alias="RequiresRequestReplay")


class AddressSpacesResponse(_Model):
    local_default: str = Field(alias="LocalDefaultAddressSpace")
    global_default: str = Field(alias="GlobalDefaultAddressSpace")


class RequestPoolRequest(_Model):
    address_space: str = Field("", alias="AddressSpace")
    pool: str = Field("", alias="Pool")
    sub_pool: str = Field("", alias="SubPool")
    options: dict[str, str] = Field(default_factory=dict, alias="Options")
    v6: bool = Field(False, alias="V6")

    @field_validator("pool", "sub_pool")
    @classmethod
    def _net(cls, v: str) -> str:
        if not v:
            return v
        network = ipaddress.ip_network(_network_or_empty(v))
        if network.version == 4 and network.prefixlen < MIN_POOL_PREFIX_V4:
            widest = MIN_POOL_PREFIX_V4
            raise ValueError(f"{v} is wider than /{widest}, the widest IPv4 pool Neutron makes")
        return v

    @field_validator("options", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class RequestPoolResponse(_Model):
    pool_id: str = Field(alias="PoolID")
    pool: str = Field(alias="Pool")
    data: dict[str, str] = Field(default_factory=dict, alias="Data")


class ReleasePoolRequest(_Model):
    pool_id: str = Field(alias="PoolID", min_length=1, max_length=255)


class RequestAddressRequest(_Model):
    pool_id: str = Field(alias="PoolID", min_length=1, max_length=255)
    address: str = Field("", alias="Address")
    options: dict[str, str] = Field(default_factory=dict, alias="Options")

    @field_validator("address")
    @classmethod
    def _addr(cls, v: str) -> str:
        if v:
            ipaddress.ip_address(v)
        return v

    @field_validator("options", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v

    @field_validator("options")
    @classmethod
    def _mac_option(cls, v: dict[str, str]) -> dict[str, str]:
        mac = v.get(OPT_MAC_ADDRESS, "")
        try:
            _mac_or_empty(mac)
        except ValueError as exc:
            raise ValueError(f"{OPT_MAC_ADDRESS} {mac!r}: {exc}") from None
        return v

    @property
    def is_gateway(self) -> bool:
        return self.options.get(OPT_REQUEST_ADDRESS_TYPE) == REQUEST_ADDRESS_TYPE_GATEWAY

    @property
    def from_swarm(self) -> bool:
        """swarmkit's allocator on a manager asks (for a task, a VIP or a node's attachment):
        the address is held for the swarm, not for a container of this host."""
        return self.options.get(OPT_IPAM_SERIAL, "").lower() == "true"


class RequestAddressResponse(_Model):
    address: str = Field(alias="Address")  # CIDR form: address/prefixlen
    data: dict[str, str] = Field(default_factory=dict, alias="Data")


class ReleaseAddressRequest(_Model):
    pool_id: str = Field(alias="PoolID", min_length=1, max_length=255)
    address: str = Field(alias="Address")

    @field_validator("address")
    @classmethod
    def _addr(cls, v: str) -> str:
        ipaddress.ip_address(v)
        return v
