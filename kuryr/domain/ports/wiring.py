"""What the pools need of the host side of their ports (kuryr.domain.ports.prewire)."""

from __future__ import annotations

from typing import Protocol

from kuryr.domain.ports.port import Port


class Wiring(Protocol):
    def ahead(self, port: Port) -> None: ...

    def gone(self, port_id: str, network_id: str = "") -> None: ...

    async def unplugged(self, network_id: str) -> None:
        """Returns once the VIFs of the network's ports being unplugged are (or time ran
        out)."""
        ...

    async def whole(self, port: Port) -> bool: ...

    def takes(self, port: Port) -> bool: ...
