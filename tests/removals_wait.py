"""The one wait for network removals: ``docker network rm`` (DeleteNetwork) answers once the
removal is journaled and the daemon removes the network from Neutron in the background
(kuryr.domain.removals). A test that asserts Neutron's state after an rm first waits until the
daemon's admin report (``kuryr status``: ``network_removals_pending``) no longer lists it."""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from kuryr import config
from kuryr.backends.unixhttp import json_call
from kuryr.ops import admin_api
from kuryr.stack.layout import Layout

REMOVAL_TIMEOUT = 90.0


def admin_status(admin_socket: Path) -> dict[str, Any]:
    """The daemon's admin report (``kuryr status``): its networks, pools, pending work."""
    return dict(json_call(admin_socket, "GET", admin_api.STATUS))


def pending_removals(admin_socket: Path) -> list[str]:
    """Docker ids of the removals the daemon has journaled and not finished."""
    return list(admin_status(admin_socket)["network_removals_pending"])


def wait_removed(
    admin_socket: Path, docker_ids: Collection[str], timeout: float = REMOVAL_TIMEOUT
) -> None:
    """Block until none of ``docker_ids`` (full Docker network ids) is a pending removal."""
    deadline = time.monotonic() + timeout
    while True:
        left = set(docker_ids).intersection(pending_removals(admin_socket))
        if not left:
            return
        assert time.monotonic() < deadline, (
            f"network removals still pending after {timeout:g}s: {sorted(left)}"
        )
        time.sleep(0.1)


def stack_admin_socket() -> Path:
    """The admin socket of the stack's daemon (the machine's own host)."""
    return admin_api.socket_path(config.load(Layout.resolve(None).sub("kuryr.conf")).state_dir)
