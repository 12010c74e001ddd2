"""Throwaway network namespaces for tests: created with a prefix, always removed.

A test that plays the container takes the container end of a plugged veth into one of
these namespaces, gives it the port's address and pings from there, as Docker's sandbox
would. Use ``namespaces`` as a pytest fixture (import it into the test module).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable

import pytest
from pyroute2 import AsyncIPRoute, netns


class Namespaces:
    """Makes namespaces named ``<prefix><random>`` and removes every one it made."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.made: list[str] = []

    def new(self) -> str:
        name = f"{self.prefix}{secrets.token_hex(4)}"
        netns.create(name)
        self.made.append(name)
        return name

    def remove_all(self) -> None:
        for name in self.made:
            if name in netns.listnetns():
                netns.remove(name)
        self.made.clear()


async def move_link(ifname: str, target: str, source: str | None = None) -> None:
    """Move ``ifname`` from ``source`` (None: this namespace) into namespace ``target``."""
    ipr = AsyncIPRoute(netns=source) if source else AsyncIPRoute()
    try:
        await ipr.link("set", ifname=ifname, net_ns_fd=target)
    finally:
        ipr.close()


async def move_home(ifname: str, source: str) -> None:
    """Move ``ifname`` from namespace ``source`` back into this one, as Docker does with a
    container's interfaces when the container stops."""
    ipr = AsyncIPRoute(netns=source)
    try:
        await ipr.link("set", ifname=ifname, net_ns_pid=os.getpid())
    finally:
        ipr.close()


async def configure(namespace: str, ifname: str, address: str, prefixlen: int) -> None:
    """Inside ``namespace``: ``ifname`` up with ``address/prefixlen``, loopback up."""
    ipr = AsyncIPRoute(netns=namespace)
    try:
        index = (await ipr.link_lookup(ifname=ifname))[0]
        await ipr.link("set", index=index, state="up")
        await ipr.link("set", index=(await ipr.link_lookup(ifname="lo"))[0], state="up")
        family = 6 if ipaddress.ip_address(address).version == 6 else 2
        kwargs = {"nodad": True} if family == 6 else {}
        await ipr.addr("add", index=index, address=address, prefixlen=prefixlen, **kwargs)
    finally:
        ipr.close()


async def link_names(namespace: str) -> set[str]:
    ipr = AsyncIPRoute(netns=namespace)
    try:
        return {link.get("ifname") async for link in await ipr.link("dump")}
    finally:
        ipr.close()


def ping(namespace: str, address: str, count: int = 3) -> subprocess.CompletedProcess[str]:
    """Ping ``address`` from inside ``namespace``; the caller checks ``returncode``."""
    argv = ["ip", "netns", "exec", namespace, "ping", "-c", str(count), "-i", "0.2", "-W", "2"]
    return subprocess.run([*argv, address], capture_output=True, text=True, timeout=30)


def namespaces_fixture(prefix: str) -> Callable[[], AsyncIterator[Namespaces]]:
    """A function-scoped fixture handing out namespaces named ``<prefix>...``."""

    @pytest.fixture
    async def namespaces() -> AsyncIterator[Namespaces]:
        made = Namespaces(prefix)
        try:
            yield made
        finally:
            made.remove_all()

    return namespaces
