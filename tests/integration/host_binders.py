"""The machine's own binders (OVS on br-int), loaded as the daemon loads them, for tests that
plug VIFs by hand on the live stack."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kuryr.backends.binding.base import Binder, Vif
from kuryr.backends.binding.registry import Binders, load
from kuryr.config import BindingConfig
from kuryr.domain.ports.port import Port
from tests.netns import configure, move_link


def host_binders_fixture() -> Callable[..., AsyncIterator[Binders]]:
    """A function-scoped fixture: the binders, closed after the test."""

    @pytest.fixture
    async def host_binders(stack: Any) -> AsyncIterator[Binders]:
        loaded = await load(BindingConfig())
        try:
            yield loaded
        finally:
            await loaded.close()

    return host_binders


async def plug_into(binder: Binder, port: Port, namespace: str, mtu: int) -> Vif:
    """``port``'s VIF plugged by hand (as a VM's NIC or a peer), its inner end moved into
    ``namespace`` with the port's first address (/24); ``binder.unplug`` removes it."""
    vif = port.vif(secrets.token_hex(32), mtu)
    await binder.plug(vif, 15.0)
    await move_link(vif.container_ifname, namespace)
    await configure(namespace, vif.container_ifname, port.ips[0], 24)
    return vif
