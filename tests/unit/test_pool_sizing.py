"""The pool sizing rules (kuryr.domain.ports.sizing): where a new pool starts, how its target
follows the ports taken within a window, its floor, and when it counts as idle."""

from __future__ import annotations

from kuryr.config import PoolConfig
from kuryr.domain.ports import sizing

STACK = PoolConfig(min=2, max=40, batch=4, initial=4, window=10.0, idle_after=300.0)


def test_a_new_pool_aims_at_initial_within_min_and_max() -> None:
    assert sizing.initial(STACK) == 4
    assert sizing.initial(PoolConfig(min=6, max=40, initial=4)) == 6, "min is a floor"
    assert sizing.initial(PoolConfig(min=0, max=3, initial=4)) == 3, "max is a cap"
    assert sizing.initial(PoolConfig(min=0, max=4, initial=0)) == 0


def test_the_floor_is_min_never_beyond_max() -> None:
    assert sizing.floor(STACK) == 2
    assert sizing.floor(PoolConfig(min=20, max=4)) == 4


def test_the_target_grows_to_the_takes_of_a_window_and_never_beyond_max() -> None:
    assert sizing.grown(4, 20, STACK) == 20
    assert sizing.grown(20, 3, STACK) == 20, "a quieter window does not shrink it"
    assert sizing.grown(4, 90, STACK) == 40
    assert sizing.grown(0, 1, STACK) == 2, "never below the floor"


def test_takes_count_within_the_window_only() -> None:
    demand = sizing.Demand(window=10.0, last=0.0)
    counts = [demand.took(t) for t in (1.0, 2.0, 3.0, 12.5, 13.0)]
    assert counts == [1, 2, 3, 2, 2]
    assert demand.last == 13.0


def test_idle_after_a_while_without_takes_and_afresh_once_rested() -> None:
    demand = sizing.Demand(window=10.0, last=100.0)
    assert not demand.idle(399.0, 300.0)
    assert demand.idle(400.0, 300.0)
    assert not demand.idle(10_000.0, 0.0), "idle_after 0: never idle"
    demand.took(400.0)
    demand.rested(500.0)
    assert not demand.takes and not demand.idle(799.0, 300.0) and demand.idle(800.0, 300.0)


def test_a_port_given_back_within_its_window_no_longer_counts() -> None:
    demand = sizing.Demand(window=10.0, last=0.0)
    # One container after the other: each port back before the next start.
    for t in range(10):
        assert demand.took(float(t), f"p{t}") == 1
        demand.returned(f"p{t}")
    # Three at once count three; a port taken before the window (p0) changes nothing.
    counts = [demand.took(t, port) for t, port in ((20.0, "a"), (20.5, "b"), (21.0, "c"))]
    assert counts == [1, 2, 3]
    demand.returned("p0")
    demand.returned("b")
    assert demand.took(22.0, "d") == 3
