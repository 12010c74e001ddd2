"""Neutron calls counted by the proxy: parsing its log, naming each request by its kind (method
plus path with ids and tags elided) and counting them per operation window.

A call is *sync* when a Docker request waited for it, and *async* when it is background work
(bookkeeping, pool refills, status checks) of the operation, counted until the daemon went
quiet. Kuryr's daemon marks the calls it makes while serving a Docker request with that
request's id (``X-OpenStack-Request-ID``, kuryr.request_ids; the proxy logs it as ``rid``):
for a daemon that marks them (``count_window``'s ``marked``), a call is sync exactly when it
carries an id, whenever in the window it arrived, so a background read that happens to land
while the docker command runs is not sync. A pool's bulk create that starts which missed wait
for carries the id of one of them (sync); other work already under way that a request then
waits for, such as a network removal it collides with, carries no id (async). kuryr-libnetwork
marks nothing: its call is sync when it reached Neutron while the docker command was still
running (the user waited for it), async when it came after the command returned. A request
of Kuryr's periodic reconciliation pass is neither: the pass runs every ``[reconcile]
interval`` whatever the containers do, so it is counted apart (*periodic*), not as a share
of the operation it happened to fall in."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_HEX_ID = re.compile(r"^[0-9a-f]{32}$", re.I)


@dataclass(frozen=True)
class Call:
    who: str
    arrived: float
    done: float
    method: str
    path: str
    status: int
    # The Docker request's id the daemon sent (None: none sent, or a log older than ids).
    rid: str | None = None

    @property
    def kind(self) -> str:
        return f"{self.method} {kind_of_path(self.path)}"


def kind_of_path(path: str) -> str:
    """``/v2.0/ports/<uuid>/tags/<tag>?x=y`` -> ``/v2.0/ports/{id}/tags/{tag}``."""
    segments = urlsplit(path).path.split("/")
    named: list[str] = []
    for i, segment in enumerate(segments):
        if i > 0 and segments[i - 1] == "tags" and segment:
            named.append("{tag}")
        elif _UUID.match(segment) or _HEX_ID.match(segment):
            named.append("{id}")
        else:
            named.append(segment)
    return "/".join(named) or "/"


def periodic(call: Call) -> bool:
    """A request of one periodic reconciliation pass of Kuryr's daemon (kuryr.ops.reconcile):
    this host's ports, Kuryr's expose groups (read without their rules), its floating IPs."""
    if call.method != "GET":
        return False
    parts = urlsplit(call.path)
    query = parse_qsl(parts.query)
    keys = sorted({key for key, _ in query})
    if parts.path == "/v2.0/ports":
        return keys == ["binding:host_id", "device_owner"] and (
            ("device_owner", "compute:kuryr") in query
        )
    if parts.path == "/v2.0/security-groups":
        return keys == ["fields"] and ("fields", "created_at") in query
    if parts.path == "/v2.0/floatingips":
        return query == [("tags", "kuryr.publish")]
    return False


def parse_log(lines: Iterable[str]) -> Iterator[Call]:
    """Calls from the proxy's JSON lines; blank or truncated lines (a write in progress)
    are skipped."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            raw = json.loads(line)
            yield Call(
                who=str(raw["who"]),
                arrived=float(raw["t0"]),
                done=float(raw["t1"]),
                method=str(raw["method"]),
                path=str(raw["path"]),
                status=int(raw["status"]),
                rid=str(raw["rid"]) if raw.get("rid") else None,
            )
        except (ValueError, KeyError, TypeError):
            continue


@dataclass
class CallCount:
    sync: int = 0
    background: int = 0
    sync_kinds: Counter[str] = field(default_factory=Counter)
    background_kinds: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    # Requests of the periodic reconciliation pass in the window: not in the total.
    periodic: int = 0

    @property
    def total(self) -> int:
        return self.sync + self.background

    def as_dict(self) -> dict[str, object]:
        return {
            "sync": self.sync,
            "async": self.background,
            "total": self.total,
            "http_errors": self.errors,
            "sync_kinds": dict(sorted(self.sync_kinds.items())),
            "async_kinds": dict(sorted(self.background_kinds.items())),
            "periodic": self.periodic,
        }


def count_window(
    calls: Iterable[Call],
    who: str,
    started: float,
    returned: float,
    quiet: float,
    *,
    marked: bool = False,
) -> CallCount:
    """Count ``who``'s calls that arrived in [started, quiet]; the periodic pass's apart.
    ``marked`` (``who`` sends each Docker request's id): those carrying an id are sync, the
    others async. Otherwise those that arrived by ``returned`` are sync, later ones async."""
    count = CallCount()
    for call in calls:
        if call.who != who or call.arrived < started or call.arrived > quiet:
            continue
        if periodic(call):
            count.periodic += 1
            continue
        if call.status >= 400:
            count.errors += 1
        sync = call.rid is not None if marked else call.arrived <= returned
        if sync:
            count.sync += 1
            count.sync_kinds[call.kind] += 1
        else:
            count.background += 1
            count.background_kinds[call.kind] += 1
    return count


def last_arrival(calls: Iterable[Call], who: str) -> float | None:
    times = [c.arrived for c in calls if c.who == who]
    return max(times) if times else None
