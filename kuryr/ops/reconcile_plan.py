"""A reconciliation plan: what to remove or finish, and why; and how it is carried out.

A plan is made with nothing changed (:meth:`kuryr.ops.reconcile.Reconciler.plan`); ``kuryr gc``
prints it or applies it, and the daemon's passes (kuryr.ops.healing) apply what two passes
agree on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kuryr.backends.neutron_api import NeutronError
from kuryr.errors import KuryrError

LOG = logging.getLogger(__name__)

Run = Callable[[], Awaitable[Any]]


class Overtaken(KuryrError):
    """The daemon took the resource up again between plan and apply: nothing to do."""


@dataclass
class Action:
    kind: str
    ident: str
    reason: str
    run: Run
    # What the judgement rested on besides the identity (a port's device_id): a later pass
    # confirms an action only when it finds the same.
    mark: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.ident, self.mark)

    def describe(self) -> str:
        return f"{self.kind} {self.ident}: {self.reason}"


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    docker_seen: bool = False

    def add(self, kind: str, ident: str, reason: str, run: Run, mark: str = "") -> None:
        self.actions.append(Action(kind, ident, reason, run, mark))

    def keep(self, kind: str) -> None:
        self.kept[kind] = self.kept.get(kind, 0) + 1


async def apply(plan: Plan) -> list[str]:
    """Carry the plan out in order; returns the failures (each also logged)."""
    errors = []
    for action in plan.actions:
        try:
            await action.run()
            LOG.info("reconciled %s", action.describe())
        except NeutronError as exc:
            if not _overtaken(exc):
                errors.append(f"{action.describe()}: {exc.message}")
                LOG.warning("cannot reconcile %s: %s", action.describe(), exc.message)
                continue
            # The daemon (or a user) got there first; nothing is left to do.
            LOG.info("not reconciled %s: overtaken (%s)", action.describe(), exc.message)
        except Overtaken as exc:
            LOG.info("not reconciled %s: %s", action.describe(), exc.message)
        except KuryrError as exc:
            errors.append(f"{action.describe()}: {exc.message}")
            LOG.warning("cannot reconcile %s: %s", action.describe(), exc.message)
    return errors


def _overtaken(exc: NeutronError) -> bool:
    """The resource changed between plan and apply: gone (404), written since the plan read
    it (412, a conditional write), or a subnetpool that got a new subnet meanwhile (Neutron
    answers 400 SubnetPoolDeleteError, or 409)."""
    return exc.not_found or exc.stale or exc.conflict or exc.neutron_type == "SubnetPoolDeleteError"
