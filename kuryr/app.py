"""``kuryr serve``: the composition root that turns a config file into a running daemon.

Start-up order matters to Docker: the socket appears only once the domain is fully built, so
dockerd never activates a half-ready plugin. SIGTERM/SIGINT stop it cleanly: the socket goes
first, in-flight requests finish, then the domain closes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from kuryr import metrics, sdnotify
from kuryr.config import Config
from kuryr.errors import KuryrError
from kuryr.plugin.server import Domain, StartupError, serving

log = logging.getLogger(__name__)

Builder = Callable[[Config], Awaitable[tuple[Domain, Callable[[], Awaitable[None]]]]]

# Client libraries whose debug output can carry request headers and bodies (tokens, passwords),
# and pyroute2, whose debug output dumps every netlink message of the host.
_QUIET_LOGGERS = ("keystoneauth", "openstack", "urllib3", "stevedore", "pyroute2")


def setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    # keystoneauth warns of each failed attempt in its own words (a failed version
    # discovery, ...); Kuryr says what failed, once, naming Keystone (kuryr.backends.neutron_auth).
    logging.getLogger("keystoneauth").setLevel(logging.ERROR)


async def run(config: Config, build: Builder, stop: asyncio.Event) -> None:
    """Build the domain, serve until ``stop`` is set, then tear everything down."""
    domain, close = await build(config)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(close)
        if config.metrics_listen:
            await stack.enter_async_context(metrics.serving(config.metrics_listen))
            log.info("metrics on %s", config.metrics_listen)
        await stack.enter_async_context(
            serving(
                config.socket,
                domain,
                config.socket_group,
                config.request_timeout,
            )
        )
        log.info("serving Docker's NetworkDriver and IpamDriver on %s", config.socket)
        # Under systemd's Type=notify, units ordered after Kuryr (docker.service) start now.
        sdnotify.notify(f"{sdnotify.READY}\nSTATUS=serving on {config.socket}")
        await stop.wait()
        sdnotify.notify(sdnotify.STOPPING)
        log.info("stopping")


async def _run_until_signalled(config: Config) -> None:
    # Imported here: the domain pulls in Neutron and OVSDB clients only a serving daemon needs.
    from kuryr import driver

    build: Builder = driver.build
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run(config, build, stop)


def main(args: argparse.Namespace, config: Config) -> int:
    try:
        if config.metrics_listen:
            metrics.parse_listen(config.metrics_listen)
    except ValueError as exc:
        logging.basicConfig()
        log.error("cannot load configuration: %s", exc)
        return 2
    setup_logging(config.debug)
    try:
        asyncio.run(_run_until_signalled(config))
    except (StartupError, KuryrError) as exc:
        # A backend unreachable at start (e.g. Keystone's catalog): its message says which.
        log.error("cannot start: %s", exc)
        return 1
    return 0
