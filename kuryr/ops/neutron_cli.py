"""Commands that ask Neutron directly (not the daemon): the client from the config file."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kuryr.backends.neutron import connect
from kuryr.backends.neutron_api import NeutronApi
from kuryr.config import Config
from kuryr.errors import KuryrError

T = TypeVar("T")


def run(prog: str, config: Config, work: Callable[[NeutronApi], Awaitable[T]]) -> T | None:
    """``work`` with a Neutron client built as the daemon builds it; None, after one line on
    stderr naming ``prog``, when it fails."""

    async def go() -> T:
        neutron = await asyncio.to_thread(connect, config.neutron)
        return await work(neutron)

    try:
        return asyncio.run(go())
    except (KuryrError, OSError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
