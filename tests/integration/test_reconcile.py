"""``kuryr gc`` on made-up leftovers: what a crash leaves is found and removed, the rest kept.

The leftovers are made by hand on a network of this test's own (``rel-`` prefix) and gc is
scoped to it (``--network``), so other engineers' in-flight work on the shared stack is never
judged. Grace is 0: everything is old enough to judge.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from typing import Any

import pytest

from kuryr.backends.binding.base import host_ifname
from kuryr.naming import POOL_PORT_NAME, POOL_TAG
from kuryr.stack.layout import Layout
from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron, run
from tests.integration.gc_helpers import network, port
from tests.integration.private_daemon import KURYR

pytestmark = pytest.mark.stack

__all__ = ["network"]


def gc(stack: StackFacts, network_id: str, *extra: str) -> dict[str, Any]:
    config = Layout.resolve(None).sub("kuryr.conf")
    done = subprocess.run(
        [
            str(KURYR),
            "--config-file",
            str(config),
            "gc",
            "--json",
            "--grace",
            "0",
            "--network",
            network_id,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def plug(ifname: str, port_id: str) -> None:
    """An interface as Kuryr's OVS binder leaves it: a veth on br-int with its markers."""
    run(["ip", "link", "add", ifname, "type", "veth", "peer", "name", "t_c" + ifname[3:]])
    run(
        [
            "ovs-vsctl",
            "add-port",
            "br-int",
            ifname,
            "--",
            "set",
            "Interface",
            ifname,
            f"external_ids:iface-id={port_id}",
            f"external_ids:kuryr-endpoint={ifname}",
        ]
    )


def unplug(ifname: str) -> None:
    run(["ovs-vsctl", "--if-exists", "del-port", ifname], check=False)
    run(["ip", "link", "del", ifname], check=False)


def test_gc_finds_orphans_and_removes_them_only_with_apply(
    stack: StackFacts, network: dict[str, Any]
) -> None:
    neutron = Neutron()
    host = stack.chassis_hostname
    orphan = port(neutron, network["id"], host, device_id=secrets.token_hex(32))
    reservation = port(neutron, network["id"], host)
    pooled = port(neutron, network["id"], host)
    neutron.set_tags("ports", pooled["id"], [POOL_TAG])
    # A pool port whose bulk create outlived its caller: named in the POST, never tagged.
    untagged = port(neutron, network["id"], host, name=POOL_PORT_NAME)
    # A pool port its container left (device_id of a gone endpoint): back to its pool.
    dead_endpoint = secrets.token_hex(32)
    left = port(neutron, network["id"], host, device_id=dead_endpoint, name=f"{dead_endpoint}-port")
    neutron.set_tags("ports", left["id"], [POOL_TAG, f"kuryr.net.uuid.lh:{dead_endpoint[:32]}"])
    gone = port(neutron, network["id"], host)
    neutron.delete("ports", gone["id"])
    on_ovs, stray = host_ifname(str(uuid.uuid4())), host_ifname(str(uuid.uuid4()))
    try:
        plug(on_ovs, gone["id"])
        run(["ip", "link", "add", stray, "type", "veth", "peer", "name", "t_c" + stray[3:]])
        planned = gc(stack, network["id"])
        found = {(a["kind"], a["id"]) for a in planned["actions"]}
        expected = {
            ("port", orphan["id"]),
            ("address", reservation["id"]),
            ("ovs-interface", on_ovs),
            ("veth", stray),
            ("port", left["id"]),
        }
        assert expected <= found, planned
        for kept in (pooled, untagged):
            assert not any(kept["id"] == a["id"] for a in planned["actions"]), planned
        assert neutron.show("ports", orphan["id"]) is not None, "a dry run removed a port"

        applied = gc(stack, network["id"], "--apply")
        assert applied["errors"] == []
        assert neutron.show("ports", orphan["id"]) is None
        assert neutron.show("ports", reservation["id"]) is None
        assert neutron.show("ports", pooled["id"]) is not None
        assert neutron.show("ports", untagged["id"]) is not None
        cleaned = neutron.show("ports", left["id"])
        assert cleaned is not None, "a pool port was deleted instead of returned to its pool"
        assert (cleaned["device_id"], cleaned["name"], cleaned["tags"]) == (
            "",
            POOL_PORT_NAME,
            [POOL_TAG],
        )
        assert on_ovs not in run(["ovs-vsctl", "list-ports", "br-int"]).stdout.split()
        links = run(["ip", "-o", "link", "show"]).stdout
        assert f" {on_ovs}@" not in links and f" {stray}@" not in links
    finally:
        unplug(on_ovs)
        unplug(stray)
