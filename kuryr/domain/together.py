"""Neutron calls of one Docker request run side by side, each to its end.

``asyncio.gather`` returns at the first failure and leaves the other calls running, and a
``TaskGroup`` cancels them, which stops the waiting but not a request already sent: either way
the undo that follows a failure could run while a create it must undo is still under way, and
miss what that create makes. :func:`both` waits for every call, then raises the first failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """``first`` and ``second`` at once; once both ended, their results, or the failure of
    ``first`` when both failed, else the one that failed."""
    one, two = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(one, BaseException):
        raise one
    if isinstance(two, BaseException):
        raise two
    return one, two
