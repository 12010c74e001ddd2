"""gc against the daemon's journal: a port handed to a new endpoint after gc read it is kept.

The crash test's loss: gc read a pool port still carrying a dead endpoint's device_id and
planned to clean it; before the plan ran, the daemon's journal wrote the device_id of the
live endpoint that had taken the port meanwhile; gc's cleaning then wiped that. The journal's
write is done here by hand between plan and apply, on this test's own network (``rel-``
prefix, gc scoped to it).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from kuryr import config as config_mod
from kuryr.naming import POOL_TAG, port_name
from kuryr.ops.reconcile import opened
from kuryr.stack.layout import Layout
from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron
from tests.integration.gc_helpers import network, port

pytestmark = pytest.mark.stack

__all__ = ["network"]


async def test_gc_leaves_a_port_the_journal_reassigned_after_the_plan(
    stack: StackFacts, network: dict[str, Any]
) -> None:
    neutron = Neutron()
    dead = secrets.token_hex(32)
    left = port(
        neutron, network["id"], stack.chassis_hostname, device_id=dead, name=port_name(dead)
    )
    neutron.set_tags("ports", left["id"], [POOL_TAG])
    config = config_mod.load(Path(Layout.resolve(None).sub("kuryr.conf")))
    async with opened(config, grace=0.0, scope=frozenset({network["id"]})) as reconciler:
        plan = await reconciler.plan()
        assert [a.ident for a in plan.actions if a.kind == "port"] == [left["id"]]
        live = secrets.token_hex(32)
        neutron.update("ports", left["id"], device_id=live, name=port_name(live))
        errors = await reconciler.apply(plan)
    assert errors == []
    after = neutron.show("ports", left["id"])
    assert after is not None
    assert (after["device_id"], after["name"]) == (live, port_name(live))
