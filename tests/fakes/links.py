"""The links of one VM's namespace, in memory, for the nested binders' unit tests: its NIC and
the VLAN and macvlan devices made on it, as rtnetlink would report them
(tests/integration/test_binding_nested_links.py checks the real calls)."""

from __future__ import annotations

import asyncio
import errno

from pyroute2.netlink.exceptions import NetlinkError

from kuryr.backends.netlink import Link, Netlink
from kuryr.errors import BackendError


class FakeLinks(Netlink):
    def __init__(self, nic: str = "eth0", mac: str = "fa:16:3e:00:00:01") -> None:
        super().__init__()
        self.links: dict[str, Link] = {nic: Link(nic, 2, mac, 1500, True, None, kind="veth")}
        self._next = 3
        self.refuse = ""  # errno name a create answers with (as the kernel may: ENOMEM, ...)

    async def link(self, ifname: str) -> Link | None:
        await asyncio.sleep(0)
        return self.links.get(ifname)

    async def index(self, ifname: str) -> int | None:
        found = self.links.get(ifname)
        return None if found is None else found.index

    async def create_sublink(
        self, ifname: str, parent: int, mac: str, mtu: int, vlan_id: int | None = None
    ) -> None:
        await asyncio.sleep(0)
        if self.refuse or not any(link.index == parent for link in self.links.values()):
            code = getattr(errno, self.refuse or "ENODEV")
            raise BackendError(f"cannot create {ifname}: {NetlinkError(code)}")
        kind = "vlan" if vlan_id is not None else "macvlan"
        self.links[ifname] = Link(
            ifname, self._next, mac, mtu, False, None, peer=parent, kind=kind, vlan_id=vlan_id
        )
        self._next += 1

    async def delete_link(self, ifname: str) -> bool:
        await asyncio.sleep(0)
        return self.links.pop(ifname, None) is not None

    async def set_alias(self, ifname: str, alias: str) -> None:
        link = self.links[ifname]
        self.links[ifname] = Link(
            link.name,
            link.index,
            link.mac,
            link.mtu,
            link.up,
            link.master,
            link.peer,
            alias=alias,
            kind=link.kind,
            vlan_id=link.vlan_id,
        )

    async def names(self, prefix: str) -> set[str]:
        """The VM namespace's links only, never the machine's (a reconciliation reads them)."""
        return {name for name in self.links if name.startswith(prefix)}

    async def aliased(self, prefix: str) -> dict[str, str]:
        return {ln.alias: name for name, ln in self.links.items() if ln.alias.startswith(prefix)}

    async def close(self) -> None:
        """Nothing to close."""
