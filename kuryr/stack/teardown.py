"""Removing a set of simulated machines (hosts, VMs) that share something on the machine's
side: each one, last made first, then the shared part and their directory, only once every
one of them is gone (a failure leaves the shared part for the next ``down`` to retry). One
machine goes step by step: every step is attempted, and its directory goes only when none
failed."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from kuryr.stack.errors import StackError

Member = TypeVar("Member")


def remove_one(steps: Sequence[Callable[[], None]], directory: Path) -> list[StackError]:
    """The errors of running every one of ``steps``; ``directory`` goes when there are none."""
    errors: list[StackError] = []
    for step in steps:
        try:
            step()
        except StackError as exc:
            errors.append(exc)
    if not errors:
        shutil.rmtree(directory, ignore_errors=True)
    return errors


def remove_members(
    members: Sequence[Member],
    remove: Callable[[Member], list[StackError]],
    shared: Callable[[], None],
    directory: Path,
) -> list[StackError]:
    """The errors of removing ``members`` (last first), then ``shared`` and ``directory``."""
    errors: list[StackError] = []
    for member in reversed(members):
        errors += remove(member)
    if errors:
        return errors
    try:
        shared()
    except StackError as exc:
        return [exc]
    shutil.rmtree(directory, ignore_errors=True)
    return []
