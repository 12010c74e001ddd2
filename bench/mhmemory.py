"""Memory of one simulated host: each of its processes (``kuryr stack hosts --json`` lists
them) by role, PSS and RSS summed per role; the five daemons a host needs apart from the
rest (containerd, shims, containers, the Neutron relay)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bench import procs

# What a Docker host on Kuryr runs, as the report names it.
DAEMONS = ("ovsdb-server", "ovs-vswitchd", "ovn-controller", "dockerd", "kuryr")
_BY_COMM = {*DAEMONS, "containerd"}


def role(comm: str, argv: Sequence[str]) -> str:
    """The role of a process of the host, from its command name and argv."""
    if comm in _BY_COMM:
        return comm
    if "kuryr.stack.nsrelay" in argv:
        return "relay"
    # The daemon is the venv's ``kuryr`` script: comm may be its interpreter's name.
    if "serve" in argv and any(arg.endswith("/kuryr") or arg == "kuryr" for arg in argv[:2]):
        return "kuryr"
    if comm.startswith("containerd-shim"):
        return "shim"
    return "container"


def by_role(rows: Iterable[tuple[str, int, int]]) -> dict[str, dict[str, int]]:
    """(role, PSS KiB, RSS KiB) rows summed per role, with the count of processes."""
    summed: dict[str, dict[str, int]] = {}
    for name, pss, rss in rows:
        entry = summed.setdefault(name, {"processes": 0, "pss_kib": 0, "rss_kib": 0})
        entry["processes"] += 1
        entry["pss_kib"] += pss
        entry["rss_kib"] += rss
    return summed


def totals(roles: dict[str, dict[str, int]], names: Iterable[str]) -> dict[str, int]:
    wanted = [roles[n] for n in names if n in roles]
    return {
        "processes": sum(r["processes"] for r in wanted),
        "pss_kib": sum(r["pss_kib"] for r in wanted),
        "rss_kib": sum(r["rss_kib"] for r in wanted),
    }


def of_host(pids: Sequence[int]) -> dict[str, Any]:
    """The host's memory now: per role, the five daemons summed, and every process."""
    rows = []
    for pid in pids:
        measured = procs.memory_kib(pid)
        if measured is not None:
            rows.append((role(procs.comm(pid), procs.argv(pid)), *measured))
    roles = by_role(rows)
    return {
        "roles": roles,
        "daemons": totals(roles, DAEMONS),
        "missing": [d for d in DAEMONS if d not in roles],
        "all": totals(roles, roles),
    }
