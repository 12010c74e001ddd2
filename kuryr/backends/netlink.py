"""Link operations over rtnetlink (pyroute2), without forking ``ip``.

One :class:`Netlink` holds one rtnetlink socket for one network namespace; pyroute2's asyncio
core matches replies by sequence number, so many coroutines may share it at once.
"""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from kuryr.errors import BackendError

IFF_UP = 0x1
IFF_PROMISC = 0x100
IFF_ALLMULTI = 0x200
# IN6_ADDR_GEN_MODE_NONE: the link gets no IPv6 address of its own, not even link-local.
_NO_IPV6_ADDRESSES = {"attrs": [["AF_INET6", {"attrs": [["IFLA_INET6_ADDR_GEN_MODE", 1]]}]]}


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    mac: str
    mtu: int
    up: bool
    master: int | None  # index of the bridge it is enslaved to
    peer: int | None = None  # a veth's peer, when in the same namespace
    promisc: bool = False
    allmulti: bool = False
    alias: str = ""
    kind: str = ""  # IFLA_INFO_KIND: veth, vlan, macvlan, ...
    vlan_id: int | None = None  # a VLAN subinterface's id


class Netlink:
    """rtnetlink in the current namespace, or in the named one (``/run/netns/<netns>``)."""

    def __init__(self, netns: str | None = None) -> None:
        self._netns = netns
        self._ipr: AsyncIPRoute | None = None
        # The kernel runs one dump at a time per socket and answers a second with EBUSY
        # (seen live: a VIF's unplug failed beside a reconciliation pass's survey).
        self._dumping = asyncio.Lock()

    def _socket(self) -> AsyncIPRoute:
        # Opened lazily so the socket belongs to the running event loop.
        if self._ipr is None:
            self._ipr = AsyncIPRoute(netns=self._netns) if self._netns else AsyncIPRoute()
        return self._ipr

    async def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def index(self, ifname: str) -> int | None:
        """The interface index of ``ifname``, or None when there is no such link."""
        found = await self._socket().link_lookup(ifname=ifname)
        return int(found[0]) if found else None

    async def create_veth(
        self, host: str, container: str, mac: str, mtu: int, master: int | None = None
    ) -> None:
        """Create the pair in one request: host end up (enslaved to ``master`` if given),
        container end with ``mac``. A pair left by an earlier attempt is replaced, so a
        retried plug starts from a clean link.

        The host end is a switch port with no address of its own: IPv6 addressing is turned
        off on it before it has carrier (the container end is down), so the host sends no
        link-local chatter (DAD, router and listener solicitations) into the tenant network,
        and OVS, which reads every address of the host again on each link change, has
        hundreds fewer to read."""
        spec: dict[str, object] = {
            "ifname": host,
            "kind": "veth",
            "mtu": mtu,
            "state": "up",
            "peer": {"ifname": container, "address": mac, "mtu": mtu},
        }
        if master is not None:
            spec["master"] = master
        try:
            await self._socket().link("add", **spec)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise _backend_error(f"cannot create veth {host}/{container}", e) from e
            await self.delete_link(host)
            await self.delete_link(container)
            try:
                await self._socket().link("add", **spec)
            except NetlinkError as e2:
                raise _backend_error(f"cannot create veth {host}/{container}", e2) from e2
        try:
            await self._socket().link("set", ifname=host, IFLA_AF_SPEC=_NO_IPV6_ADDRESSES)
        except NetlinkError as e:
            if e.code != errno.EAFNOSUPPORT:  # else the host has no IPv6 at all
                raise _backend_error(f"cannot turn IPv6 addressing off on {host}", e) from e

    async def create_sublink(
        self, ifname: str, parent: int, mac: str, mtu: int, vlan_id: int | None = None
    ) -> None:
        """A device of the ``parent`` link for a container, left down (Docker moves it into the
        container and sets it up): with ``vlan_id``, its 802.1Q subinterface; else a macvlan
        in bridge mode (its containers reach each other through the parent). A device left by
        an earlier attempt is replaced, so a retried plug starts from a clean link."""
        spec: dict[str, object] = {
            "ifname": ifname,
            "link": parent,
            "address": mac,
            "mtu": mtu,
        }
        if vlan_id is not None:
            spec.update(kind="vlan", vlan_id=vlan_id)
        else:
            spec.update(kind="macvlan", macvlan_mode="bridge")
        for attempt in (1, 2):
            try:
                await self._socket().link("add", **spec)
                return
            except NetlinkError as e:
                if e.code != errno.EEXIST or attempt == 2:
                    raise _backend_error(f"cannot create {spec['kind']} {ifname}", e) from e
                await self.delete_link(ifname)

    async def delete_link(self, ifname: str) -> bool:
        """Delete ``ifname`` (a veth takes its peer along); False when it did not exist."""
        try:
            await self._socket().link("del", ifname=ifname)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise _backend_error(f"cannot delete link {ifname}", e) from e
        return True

    async def ensure_bridge(self, name: str) -> int:
        """The index of Linux bridge ``name``, created (and set up) when missing."""
        found = await self.index(name)
        if found is not None:
            return found
        try:
            await self._socket().link("add", ifname=name, kind="bridge", state="up")
        except NetlinkError as e:
            # Another plug on the same network may have created it meanwhile.
            if e.code != errno.EEXIST:
                raise _backend_error(f"cannot create bridge {name}", e) from e
        created = await self.index(name)
        if created is None:
            raise BackendError(f"bridge {name} vanished right after creation")
        return created

    async def set_alias(self, ifname: str, alias: str) -> None:
        try:
            await self._socket().link("set", ifname=ifname, ifalias=alias)
        except NetlinkError as e:
            raise _backend_error(f"cannot set the alias of {ifname}", e) from e

    async def aliased(self, prefix: str) -> dict[str, str]:
        """Alias -> interface name, for every link whose alias starts with ``prefix``."""
        found: dict[str, str] = {}
        async with self._dumping:
            async for link in await self._socket().link("dump"):
                alias = link.get("ifalias")
                if alias and alias.startswith(prefix):
                    found[alias] = link.get("ifname")
        return found

    async def names(self, prefix: str) -> set[str]:
        """The names of every link whose name starts with ``prefix``."""
        found: set[str] = set()
        async with self._dumping:
            async for link in await self._socket().link("dump"):
                name = link.get("ifname")
                if name and name.startswith(prefix):
                    found.add(str(name))
        return found

    async def link(self, ifname: str) -> Link | None:
        """What the kernel says of ``ifname``, or None when there is no such link."""
        try:
            found = await self._socket().link("get", ifname=ifname)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise _backend_error(f"cannot read link {ifname}", e) from e
        msg = found[0]
        master = msg.get("master")
        peer = msg.get("link")
        flags = int(msg["flags"])
        kind, vlan_id = _link_info(msg)
        return Link(
            name=str(msg.get("ifname")),
            index=int(msg["index"]),
            mac=str(msg.get("address")),
            mtu=int(msg.get("mtu")),
            up=bool(flags & IFF_UP),
            master=int(master) if master else None,
            peer=int(peer) if peer else None,
            promisc=bool(flags & IFF_PROMISC),
            allmulti=bool(flags & IFF_ALLMULTI),
            alias=str(msg.get("ifalias") or ""),
            kind=kind,
            vlan_id=vlan_id,
        )


def _link_info(msg: Any) -> tuple[str, int | None]:
    """IFLA_LINKINFO's kind, and the VLAN id of a vlan."""
    info = msg.get_attr("IFLA_LINKINFO")
    if info is None:
        return "", None
    kind = str(info.get_attr("IFLA_INFO_KIND") or "")
    data = info.get_attr("IFLA_INFO_DATA")
    vlan_id = data.get_attr("IFLA_VLAN_ID") if kind == "vlan" and data is not None else None
    return kind, int(vlan_id) if vlan_id is not None else None


def _backend_error(what: str, e: NetlinkError) -> BackendError:
    return BackendError(f"{what}: {e.args[1] if len(e.args) > 1 else e}")
