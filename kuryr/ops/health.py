"""``kuryr health``: can this host start containers on Kuryr networks right now?

Three checks, each bounded and run for real, one line each (``ok``/``FAIL``, name, detail), exit
status 0 only when all pass, so a monitoring probe can run it as it is:

- ``daemon``: the plugin socket answers ``Plugin.Activate`` (the event loop is serving);
- ``neutron``: Neutron answers a one-row network list with the daemon's credentials;
- ``ovsdb``: the local OVSDB answers and holds the integration bridge.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kuryr import deadline
from kuryr.backends.unixhttp import json_call
from kuryr.config import Config
from kuryr.errors import KuryrError

# Well under a monitoring system's usual probe timeout, even when all three time out.
CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    healthy: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.healthy else 'FAIL':4}  {self.name:7}  {self.detail}"


async def daemon(config: Config) -> str:
    try:
        answer = await asyncio.to_thread(
            json_call, config.socket, "POST", "/Plugin.Activate", None, CHECK_TIMEOUT
        )
    except OSError as exc:
        raise RuntimeError(
            f"{config.socket}: {exc.strerror or exc} (is kuryr serve running?)"
        ) from exc
    if "NetworkDriver" not in answer.get("Implements", []):
        raise RuntimeError(f"Plugin.Activate answered {answer}")
    return f"{config.socket} answers Plugin.Activate"


async def neutron(config: Config) -> str:
    from kuryr.backends.neutron import connect  # deferred: openstacksdk takes ~0.5 s to import

    client = await asyncio.to_thread(connect, config.neutron)
    with deadline.bounded(CHECK_TIMEOUT):
        # Alone first: a Keystone failure reads as it does at the daemon's start.
        await client.authenticate()
        await client.query("networks", {"limit": "1", "fields": "id"})
    return f"Neutron at {config.neutron.endpoint or 'the catalog endpoint'} answers"


async def ovsdb(config: Config) -> str:
    from kuryr.backends.ovsdb import Ovsdb  # deferred: ovsdbapp is only needed here

    remote = config.binding.ovsdb_connection
    bridge = config.binding.integration_bridge
    db = await Ovsdb.connect(remote, CHECK_TIMEOUT)
    try:
        found = await db.run(lambda: db.api.br_exists(bridge).execute(check_error=True))
    finally:
        await db.close()
    if not found:
        raise RuntimeError(f"{remote} answers but has no bridge {bridge}")
    return f"{remote} answers, bridge {bridge} present"


CHECKS: dict[str, Callable[[Config], Awaitable[str]]] = {
    "daemon": daemon,
    "neutron": neutron,
    "ovsdb": ovsdb,
}


async def run_check(name: str, config: Config) -> Check:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(CHECKS[name](config), CHECK_TIMEOUT + 1)
    except TimeoutError:
        return Check(name, False, f"no answer within {CHECK_TIMEOUT + 1:.0f}s")
    except (KuryrError, OSError, RuntimeError, ValueError, http.client.HTTPException) as exc:
        return Check(name, False, str(exc) or type(exc).__name__)
    return Check(name, True, f"{detail} ({(time.perf_counter() - started) * 1000:.0f} ms)")


async def run_all(config: Config) -> list[Check]:
    return list(await asyncio.gather(*(run_check(name, config) for name in CHECKS)))


def config_refused(error: Exception) -> int:
    """The configuration cannot be loaded: that is the first check, and it failed."""
    print(Check("config", False, str(error)).line())
    return 1


def main(args: argparse.Namespace, config: Config) -> int:
    # The client libraries' warnings would interleave with the one-line-per-check output.
    logging.basicConfig(level=logging.CRITICAL)
    checks = asyncio.run(run_all(config))
    for check in checks:
        print(check.line())
    return 0 if all(c.healthy for c in checks) else 1
