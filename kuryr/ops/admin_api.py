"""The daemon's admin socket as both sides know it: where it is, its routes, the words its
answers use.

The daemon serves it (:mod:`kuryr.ops.admin_server`) on ``<state_dir>/admin.sock`` (mode 0600
inside the root-only state directory); ``kuryr pools``, ``kuryr status`` and ``kuryr port``
call it (:func:`kuryr.backends.unixhttp.json_call`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SOCKET_NAME = "admin.sock"

POOLS = "/pools"  # GET: the pool settings and every pool's levels
POOLS_FILL = "/pools/fill"  # POST {"subnet_id", "count"}: ports created per subnet
POOLS_DRAIN = "/pools/drain"  # POST {"subnet_id", "keep"}: free ports deleted per subnet
STATUS = "/status"  # GET: networks, endpoints, pools, pending Neutron writes
ENDPOINTS = "/endpoints"  # GET ?id=...: the ports of those endpoints

# Whether a port's Neutron bookkeeping (device_id, name, tags) is in Neutron or journaled.
BOOKKEEPING_DONE = "done"
BOOKKEEPING_PENDING = "pending"
# A port status the daemon has not learnt yet.
STATUS_UNKNOWN = "unknown"


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


def config_line(cfg: dict[str, Any]) -> str:
    """The sizing keys on one line, for the operator's tables."""
    return (
        f"min {cfg['min']}, max {cfg['max']}, batch {cfg['batch']}, initial {cfg['initial']}, "
        f"window {cfg['window']:g} s, idle_after {cfg['idle_after']:g} s"
    )
