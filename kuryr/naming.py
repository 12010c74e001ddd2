"""Neutron names and tags, compatible with kuryr-libnetwork (pure functions).

A Neutron tag holds at most 60 characters, so a 64-character Docker id is split into a
lower half (``kuryr.net.uuid.lh:<id[0:32]>``) and an upper half (``...uh:<id[32:64]>``).
Networks carry the Docker network id that way, ports the Docker endpoint id.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

NET_NAME_PREFIX = "kuryr-net-"
SUBNET_NAME_PREFIX = "kuryr-subnet-"
SUBNETPOOL_NAME_PREFIX = "kuryrPool-"
PORT_NAME_SUFFIX = "-port"
# A port RequestAddress reserved for one container (no endpoint yet).
UNBOUND_PORT_NAME = "kuryr-unbound-port"
# A port created ahead for a pool (kuryr.domain.ports.pools). The name goes in the POST body, so the
# port
# is recognisable from the moment Neutron makes it; the pool tag only follows in a PUT (this
# Neutron ignores tags in POST bodies), and a bulk POST can outlive the caller's timeout.
POOL_PORT_NAME = "kuryr-pool-port"
EXPOSE_SG_PREFIX = "kuryr_expose_"

DEVICE_OWNER = "compute:kuryr"
# Neutron's trunk plugin: the device_owner of a port while it is a trunk's subport.
SUBPORT_OWNER = "trunk:subport"

TAG_ID_LOW = "kuryr.net.uuid.lh"
TAG_ID_HIGH = "kuryr.net.uuid.uh"
TAG_EXISTING_NET = "kuryr.net.existing"
TAG_EXISTING_PORT = "kuryr.port.existing"
TAG_EXISTING_SUBNETPOOL = "kuryr.subnetpool.existing"
# Not in kuryr-libnetwork: a port waiting in one of Kuryr's port pools.
POOL_TAG = "kuryr.port.pooled"
# Not in kuryr-libnetwork: remembers ``--internal`` across daemon restarts.
TAG_INTERNAL_NET = "kuryr.net.internal"
# Not in kuryr-libnetwork: a network Kuryr made whose creating Docker network is gone while
# other Docker networks (other hosts) still use it; the last of them deletes it.
TAG_MADE_NET = "kuryr.net.made"

# A Docker network that adopts a Neutron network (``neutron.net.uuid|name``) holds one anchor
# port on it: no address, bound to its host, ``device_id`` the Docker network id, tagged with
# the subnets it uses (``kuryr.subnet:``) and made (``kuryr.subnet.made:``). It says who
# uses a shared network without a per-host tag on the network (kuryr.domain.sharing).
ANCHOR_OWNER = "kuryr:anchor"
ANCHOR_NAME_PREFIX = "kuryr-anchor-"
TAG_SUBNET_USED = "kuryr.subnet"
TAG_SUBNET_MADE = "kuryr.subnet.made"
# Not in kuryr-libnetwork: a subnet Kuryr made and attached to a router (``[neutron] router``
# or ``-o neutron.router``), ``kuryr.router:<router id>``. Set before the attachment, so a
# crash in between leaves nothing Kuryr would not detach; only such subnets are detached.
TAG_ROUTER = "kuryr.router"
# Not in kuryr-libnetwork: a floating IP Kuryr made for ``-p`` (kuryr.domain.published) carries
# ``kuryr.publish`` and whose it is: ``kuryr.publish.net:<neutron network id>`` (shared by the
# network's containers) or ``kuryr.publish.endpoint:<endpoint id>`` (one container's). Each
# port forwarding on it names its endpoint in its description.
TAG_PUBLISH = "kuryr.publish"
TAG_PUBLISH_NET = "kuryr.publish.net"
TAG_PUBLISH_ENDPOINT = "kuryr.publish.endpoint"
FORWARDING_PREFIX = "kuryr endpoint "
# The creating host of a network Kuryr made, in the network's description (not a tag: the
# network's tags stay kuryr-libnetwork's), so that the host's claim can be dropped when it
# is gone for good.
CREATOR_PREFIX = "kuryr creator host: "
# Not in kuryr-libnetwork: the ports of a daemon inside a Nova VM (nested mode) are not bound
# to it (ovn-controller claims no port whose binding:host_id names no chassis), so they say
# whose they are in their description, ``kuryr host: vm-port:<the VM's Neutron port id>``,
# written in the POST that makes them (tags posted with a port are dropped by a Neutron
# without ``tag_ports_during_bulk_creation``; a description never is). That host name is
# what ``kuryr gc --host`` and ``kuryr status --hosts`` call the VM.
HOST_DESCRIPTION_PREFIX = "kuryr host: "
VM_HOST_PREFIX = "vm-port:"

# Not in kuryr-libnetwork: a swarm-scoped network (kuryr.domain.swarm). The manager's
# allocation claims the Neutron network under the id ``swarm.<swarm network id>`` (only the
# lower id tag: it is shorter than 32), so that each node's Docker network of the same id
# adopts it with an anchor like any other host's. Its subnets carry ``kuryr.swarm``, by
# which a node's RequestPool knows the CIDR is the swarm's, not taken. An address the
# manager allocated is an unowned port (``kuryr-swarm-address``) tagged
# ``kuryr.swarm.address``, which the node running the task adopts.
SWARM_CLAIM_PREFIX = "swarm."
TAG_SWARM_SUBNET = "kuryr.swarm"
TAG_SWARM_ADDRESS = "kuryr.swarm.address"
SWARM_PORT_NAME = "kuryr-swarm-address"

_HALF = 32


def swarm_claim(swarm_network_id: str) -> str:
    """The id the manager's allocation of a swarm network claims its Neutron network by."""
    return SWARM_CLAIM_PREFIX + swarm_network_id


def id_tags(docker_id: str) -> list[str]:
    """The two tags that carry a Docker id (network or endpoint)."""
    tags = [f"{TAG_ID_LOW}:{docker_id[:_HALF]}"]
    if len(docker_id) > _HALF:
        tags.append(f"{TAG_ID_HIGH}:{docker_id[_HALF : 2 * _HALF]}")
    return tags


def id_tag_filter(docker_id: str) -> str:
    """The ``?tags=`` value that finds a resource carrying ``docker_id``."""
    return ",".join(id_tags(docker_id))


def id_from_tags(tags: Iterable[str]) -> str | None:
    """The Docker id carried by ``tags``, or None if either half is missing."""
    low = high = None
    for tag in tags:
        key, _, value = tag.partition(":")
        if key == TAG_ID_LOW:
            low = value
        elif key == TAG_ID_HIGH:
            high = value
    if low is None or high is None:
        return None
    return low + high


def is_kuryr_tag(tag: str) -> bool:
    """Tags Kuryr owns on a resource and removes when it lets the resource go."""
    key = tag.partition(":")[0]
    return key in (TAG_ID_LOW, TAG_ID_HIGH, TAG_EXISTING_NET, TAG_INTERNAL_NET, TAG_MADE_NET)


def without_kuryr_tags(tags: Iterable[str]) -> list[str]:
    return [t for t in tags if not is_kuryr_tag(t)]


def without_network_tags(tags: Iterable[str], docker_id: str) -> list[str]:
    """An adopted network's tags once Docker network ``docker_id`` lets it go: its id and
    existing-network tags go; tags of other Docker networks adopting it stay, and so does
    the internal mark while any of them is left."""
    gone = {*id_tags(docker_id), existing_net_tag(docker_id)}
    kept = [t for t in tags if t not in gone]
    if not any(t.partition(":")[0] == TAG_ID_LOW for t in kept):
        kept = [t for t in kept if t != TAG_INTERNAL_NET]
    return kept


def existing_net_tag(network_id: str) -> str:
    return f"{TAG_EXISTING_NET}:{network_id[:12]}"


def is_adopted_network(tags: Iterable[str]) -> bool:
    return any(t.partition(":")[0] == TAG_EXISTING_NET for t in tags)


def tag_claims(tags: Iterable[str]) -> dict[str, bool]:
    """Docker networks a network's tags name, by the lower half of their id (32 characters;
    the two halves of several ids cannot be paired, the lower half alone is unambiguous) ->
    whether that Docker network adopted it (``kuryr.net.existing:<id[:12]>``)."""
    tags = list(tags)
    existing = {t.partition(":")[2] for t in tags if t.partition(":")[0] == TAG_EXISTING_NET}
    lows = [t.partition(":")[2] for t in tags if t.partition(":")[0] == TAG_ID_LOW]
    return {low: low[:12] in existing for low in lows}


def made_by_kuryr(tags: Iterable[str]) -> bool:
    """Kuryr (or kuryr-libnetwork) made the network: a Docker network's id tags without its
    existing-network tag (the creator), or the mark its creator left when others used it."""
    tags = list(tags)
    return TAG_MADE_NET in tags or not all(tag_claims(tags).values())


def anchor_name(docker_id: str) -> str:
    return ANCHOR_NAME_PREFIX + docker_id[:12]


def anchor_tags(used: Iterable[str], made: Iterable[str], internal: bool) -> list[str]:
    made = set(made)
    tags = [f"{TAG_SUBNET_MADE if s in made else TAG_SUBNET_USED}:{s}" for s in sorted(set(used))]
    return [*tags, TAG_INTERNAL_NET] if internal else tags


def anchor_subnets(tags: Iterable[str]) -> tuple[set[str], set[str]]:
    """(subnets used, subnets made) an anchor port's tags list; made ones are used too."""
    used: set[str] = set()
    made: set[str] = set()
    for tag in tags:
        key, _, value = tag.partition(":")
        if key in (TAG_SUBNET_USED, TAG_SUBNET_MADE):
            used.add(value)
        if key == TAG_SUBNET_MADE:
            made.add(value)
    return used, made


def router_tag(router_id: str) -> str:
    return f"{TAG_ROUTER}:{router_id}"


def routers_of(tags: Iterable[str]) -> list[str]:
    """The routers Kuryr attached a subnet to, from the subnet's tags."""
    return [value for key, _, value in (t.partition(":") for t in tags) if key == TAG_ROUTER]


def publish_tags(owner_key: str, owner_id: str) -> list[str]:
    """A published floating IP's tags: Kuryr's marker and its owner (network or endpoint)."""
    return [TAG_PUBLISH, f"{owner_key}:{owner_id}"]


def forwarding_description(endpoint_id: str) -> str:
    return FORWARDING_PREFIX + endpoint_id


def forwarding_endpoint(description: str | None) -> str | None:
    """The endpoint a port forwarding Kuryr made serves, from its description."""
    if not description or not description.startswith(FORWARDING_PREFIX):
        return None
    return description[len(FORWARDING_PREFIX) :] or None


def creator_description(host: str) -> str:
    return CREATOR_PREFIX + host


def creator_host(description: str | None) -> str | None:
    text = description or ""
    return text[len(CREATOR_PREFIX) :] if text.startswith(CREATOR_PREFIX) else None


def vm_host(vm_port_id: str) -> str:
    """The host name of a daemon inside the VM whose Neutron port is ``vm_port_id``."""
    return VM_HOST_PREFIX + vm_port_id


def vm_port_of(host: str) -> str | None:
    """The VM's port id a nested host name carries; None for a chassis name."""
    if not host.startswith(VM_HOST_PREFIX):
        return None
    return host[len(VM_HOST_PREFIX) :] or None


def host_description(host: str) -> str:
    return HOST_DESCRIPTION_PREFIX + host


def described_host(description: str | None) -> str | None:
    """The host a port's description names (a nested host's port); None when it names none."""
    text = description or ""
    if not text.startswith(HOST_DESCRIPTION_PREFIX):
        return None
    return text[len(HOST_DESCRIPTION_PREFIX) :] or None


def network_name(network_id: str) -> str:
    return NET_NAME_PREFIX + network_id.removeprefix(SWARM_CLAIM_PREFIX)[:8]


def subnet_name(cidr: str) -> str:
    return SUBNET_NAME_PREFIX + str(ipaddress.ip_network(cidr, strict=False))


def subnetpool_name(cidr: str) -> str:
    return SUBNETPOOL_NAME_PREFIX + str(ipaddress.ip_network(cidr, strict=False))


def port_name(endpoint_id: str) -> str:
    return endpoint_id + PORT_NAME_SUFFIX


def expose_sg_name(endpoint_id: str) -> str:
    return EXPOSE_SG_PREFIX + endpoint_id[:12]


# --- IPAM pool ids ---------------------------------------------------------------------
# A PoolID names the Neutron subnetpool and the CIDR taken from it: ``<pool uuid>/<cidr>``.
# The subnetpool alone would be ambiguous (every network of the default pool shares it),
# except for a pool whose one prefix is the CIDR (``kuryrPool-<cidr>``): its PoolID is the
# bare uuid, as kuryr-libnetwork writes it, so either daemon serves the network (dockerd keeps
# the PoolID it was given for the network's lifetime).


def pool_id(subnetpool_id: str, cidr: str, dedicated: bool = False) -> str:
    if dedicated:
        return subnetpool_id
    return f"{subnetpool_id}/{ipaddress.ip_network(cidr, strict=False)}"


def is_bare_pool_id(value: str) -> bool:
    """A PoolID that is a subnetpool uuid alone (a dedicated pool; kuryr-libnetwork's form)."""
    return is_uuid(value)


def parse_pool_id(value: str) -> tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """(subnetpool uuid, cidr); ValueError when ``value`` is not a Kuryr PoolID."""
    subnetpool, sep, cidr = value.partition("/")
    if not sep or not is_uuid(subnetpool):
        raise ValueError(f"not a Kuryr pool id: {value!r}")
    return subnetpool, ipaddress.ip_network(cidr, strict=True)


def is_uuid(value: str) -> bool:
    """A Neutron id: a uuid in its canonical lowercase form."""
    parts = value.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(
        c in "0123456789abcdef" for c in value.replace("-", "")
    )
