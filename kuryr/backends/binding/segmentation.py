"""VLAN ids of one VM's trunk: which subport holds which, and the next free one (pure).

One daemon serves one VM, so its trunk's ids are its own to give: an id is reserved here
(synchronously, so two plugs at once never pick the same one) before the subport is asked
for, and free again once the subport is gone. What Neutron says the trunk already carries
(subports made before a restart, or by someone else) is loaded and never handed out; an id
Neutron refuses as a duplicate is set aside until the trunk is read again.
"""

from __future__ import annotations

from collections.abc import Mapping

from kuryr.errors import BackendError

MIN_VLAN = 1
MAX_VLAN = 4094  # 802.1Q: 0 and 4095 are reserved


class SegmentationIds:
    def __init__(self, first: int = MIN_VLAN, last: int = MAX_VLAN) -> None:
        self._first = first
        self._last = last
        self._held: dict[str, int] = {}  # port id -> its id
        self._refused: set[int] = set()  # ids Neutron said another subport carries

    def load(self, subports: Mapping[str, int]) -> None:
        """The trunk as Neutron shows it now: its subports' ids are theirs."""
        self._held = dict(subports)
        self._refused.clear()

    def of(self, port_id: str) -> int | None:
        return self._held.get(port_id)

    def held(self) -> dict[str, int]:
        return dict(self._held)

    def allocate(self, port_id: str) -> int:
        """The port's id: the one it holds, else the lowest free one, now reserved."""
        known = self._held.get(port_id)
        if known is not None:
            return known
        used = {*self._held.values(), *self._refused}
        for candidate in range(self._first, self._last + 1):
            if candidate not in used:
                self._held[port_id] = candidate
                return candidate
        raise BackendError(
            f"the VM's trunk has no free VLAN id left ({self._last - self._first + 1} in use)"
        )

    def refused(self, port_id: str, seg_id: int) -> None:
        """Neutron says the trunk already carries ``seg_id`` for another port."""
        if self._held.get(port_id) == seg_id:
            del self._held[port_id]
        self._refused.add(seg_id)

    def adopt(self, port_id: str, seg_id: int) -> None:
        """The port is a subport with ``seg_id`` already (a plug repeated after a crash)."""
        self._held[port_id] = seg_id

    def release(self, port_id: str) -> None:
        self._held.pop(port_id, None)
