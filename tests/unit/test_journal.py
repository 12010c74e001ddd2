"""Journal: the bookkeeping a port owes Neutron, and that recording it is durable and
coalescing (the worker is stopped here, so nothing reaches Neutron)."""

from __future__ import annotations

from pathlib import Path

from kuryr import naming
from kuryr.backends.neutron import Neutron
from kuryr.backends.state import State
from kuryr.domain.ports.desired import DELETE, UPDATE, assigned, cleaned, view_of
from kuryr.domain.ports.journal import Journal
from kuryr.domain.ports.port import Port
from kuryr.domain.quiet import Quiet

EID = "e" * 32 + "f" * 32
POOLED = "kuryr.port.pooled"


def unreachable_neutron() -> Neutron:
    # Never called: the worker is stopped before anything is recorded.
    return Neutron(session=None, base_url="http://127.0.0.1:9/v2.0")


def test_assigned_port_carries_the_endpoint() -> None:
    port = Port.from_neutron(
        {"id": "p", "device_id": "", "name": naming.POOL_PORT_NAME, "tags": [POOLED]}
    )
    desired = assigned(port, EID)
    assert desired == {
        "op": UPDATE,
        "device_id": EID,
        "name": naming.port_name(EID),
        "tags": sorted([POOLED, *naming.id_tags(EID)]),
    }


def test_cleaned_port_keeps_foreign_tags_and_drops_the_endpoints() -> None:
    port = Port.from_neutron({"id": "p", "tags": ["user-tag", *naming.id_tags(EID)]})
    desired = cleaned(port, [POOLED])
    assert desired["device_id"] == ""
    assert desired["name"] == naming.POOL_PORT_NAME
    assert desired["tags"] == sorted(["user-tag", POOLED])


def test_view_of_a_port() -> None:
    assert view_of(Port.from_neutron({"id": "p", "tags": ["b", "a", "a"]})) == {
        "device_id": "",
        "name": "",
        "tags": ["a", "b"],
    }


async def test_records_survive_a_stopped_worker_and_coalesce(tmp_path: Path) -> None:
    journal = Journal(State.open(tmp_path), unreachable_neutron(), quiet=Quiet(0.0, 0.0))
    await journal.stop()
    port = Port.from_neutron(
        {"id": "p1", "device_id": "", "name": naming.POOL_PORT_NAME, "tags": [POOLED]}
    )
    journal.record(port, assigned(port, EID))
    journal.record(port, cleaned(port, [POOLED]))
    journal.record_delete("p2")
    journal.state.close()

    reopened = State.open(tmp_path)
    entries = {e.port_id: e.desired for e in reopened.journal()}
    assert entries == {"p1": cleaned(port, [POOLED]), "p2": {"op": DELETE}}
    # The view is what Neutron held before the first record, not a later wish.
    assert reopened.view("p1") == view_of(port)
