"""What a scenario run on both the in-memory Neutron and the real one records, so the two can
be compared: each body's fields and their JSON types, and how a refused call was refused."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from kuryr.backends.neutron_api import NeutronError, Resource

Shapes = list[tuple[Any, ...]]  # (step, what it gave, ...)


def shape(body: Resource) -> dict[str, str]:
    """Each field and its JSON type."""
    return {key: type(value).__name__ for key, value in sorted(body.items())}


async def refusal(call: Awaitable[Any]) -> tuple[int, str]:
    """The HTTP status and Neutron error type ``call`` was refused with; (0, "accepted")."""
    try:
        await call
    except NeutronError as exc:
        return exc.http_status, exc.neutron_type
    return 0, "accepted"
