"""Fault injection for the in-memory Neutron (tests/fakes/neutron.py): calls that are slow,
held until a test lets them go, refused, or done with their answer lost.

A fault names the calls it hits by HTTP method and resource (None: any) and how many of them
(``times``; None: every one until cleared).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kuryr.backends.neutron_api import CAUSE_TIMEOUT, CAUSE_UNREACHABLE, NeutronError


@dataclass
class Fault:
    method: str | None = None
    resource: str | None = None
    times: int | None = 1
    delay: float = 0.0  # seconds the call takes
    gate: asyncio.Event | None = None  # the call waits until it is set
    status: int | None = None  # refused with this HTTP status (0: no answer at all)
    neutron_type: str = ""
    applied: bool = False  # refused or not, the call took effect (its answer was lost)
    hits: int = field(default=0, init=False)

    def matches(self, method: str, resource: str) -> bool:
        return (self.method in (None, method)) and (self.resource in (None, resource))

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def error(self, method: str, resource: str) -> NeutronError:
        what = f"Neutron {method} /{resource}"
        if self.applied:
            return NeutronError(f"{what} failed: no answer (fake)", cause=CAUSE_TIMEOUT)
        if not self.status:
            return NeutronError(
                f"{what} failed: Neutron unreachable (fake)", cause=CAUSE_UNREACHABLE
            )
        label = f"{self.status} {self.neutron_type}".strip()
        return NeutronError(f"{what} failed: {label}: injected", self.status, self.neutron_type)


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def slow(
        self,
        seconds: float,
        method: str | None = None,
        resource: str | None = None,
        times: int | None = None,
    ) -> None:
        """Matching calls take ``seconds`` before Neutron acts on them."""
        self._faults.append(Fault(method, resource, times, delay=seconds))

    def hold(
        self, method: str | None = None, resource: str | None = None, times: int | None = None
    ) -> asyncio.Event:
        """Matching calls wait, before Neutron acts on them, until the event is set."""
        gate = asyncio.Event()
        self._faults.append(Fault(method, resource, times, gate=gate))
        return gate

    def fail(
        self,
        method: str | None = None,
        resource: str | None = None,
        times: int | None = 1,
        status: int = 503,
        neutron_type: str = "",
    ) -> None:
        """Matching calls are refused with ``status`` (0: Neutron unreachable) and change
        nothing."""
        self._faults.append(
            Fault(method, resource, times, status=status, neutron_type=neutron_type)
        )

    def lose_answers(
        self, method: str | None = None, resource: str | None = None, times: int | None = 1
    ) -> None:
        """Matching calls take effect, but their caller gets no answer (a timeout)."""
        self._faults.append(Fault(method, resource, times, applied=True))

    def clear(self) -> None:
        self._faults.clear()

    async def before(self, method: str, resource: str) -> Fault | None:
        """Run a call's delays and holds (yielding to the loop at least once, as a real call
        does); returns the failure that hits it, if any."""
        failure: Fault | None = None
        await asyncio.sleep(0)
        for fault in list(self._faults):
            if fault.spent or not fault.matches(method, resource):
                continue
            fault.hits += 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.gate is not None:
                await fault.gate.wait()
            if (fault.status is not None or fault.applied) and failure is None:
                failure = fault
        self._faults = [f for f in self._faults if not f.spent]
        return failure
