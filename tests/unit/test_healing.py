"""The passes' second look (kuryr.ops.healing.confirm): reclaimed only what every pass for
``grace`` seconds found orphaned on the same grounds."""

from __future__ import annotations

from kuryr.ops.healing import confirm
from kuryr.ops.reconcile_plan import Action, Plan


async def _nothing() -> None:
    return None


def plan(*found: tuple[str, str, str]) -> Plan:
    return Plan(actions=[Action(kind, ident, "why", _nothing, mark) for kind, ident, mark in found])


PORT = ("port", "p1", "endpoint-a")


def test_first_sighting_reclaims_nothing() -> None:
    seen, due = confirm({}, plan(PORT), now=100.0, grace=20.0)
    assert due == [] and seen == {PORT: 100.0}


def test_found_by_every_pass_for_grace_is_due() -> None:
    seen, _ = confirm({}, plan(PORT), now=100.0, grace=20.0)
    seen, due = confirm(seen, plan(PORT), now=110.0, grace=20.0)
    assert due == []
    seen, due = confirm(seen, plan(PORT), now=120.0, grace=20.0)
    assert [a.key for a in due] == [PORT]


def test_a_pass_that_does_not_find_it_starts_it_over() -> None:
    seen, _ = confirm({}, plan(PORT), now=100.0, grace=20.0)
    seen, _ = confirm(seen, plan(), now=110.0, grace=20.0)
    seen, due = confirm(seen, plan(PORT), now=120.0, grace=20.0)
    assert due == [] and seen == {PORT: 120.0}


def test_other_grounds_start_it_over() -> None:
    seen, _ = confirm({}, plan(PORT), now=100.0, grace=20.0)
    handed_on = ("port", "p1", "endpoint-b")
    seen, due = confirm(seen, plan(handed_on), now=130.0, grace=20.0)
    assert due == [] and seen == {handed_on: 130.0}
