"""``kuryr stack up --keystone``: Keystone (uwsgi on 127.0.0.1:5000) and a Keystone-protected
neutron-server (127.0.0.1:9697) next to the noauth one, which stays as it is.

A second ``up`` changes nothing, ``status`` reports both, and after every process of theirs is
SIGKILLed ``up`` brings them back with nothing of the old ones left (processes, or the killed
server's rows in ML2/OVN's hash ring, which would make the noauth server skip OVN events).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from kuryr.stack import keystone, keystone_api, lifecycle, proc
from kuryr.stack.layout import NEUTRON_KEYSTONE_URL, Layout
from kuryr.stack.neutron_keystone import HOST
from kuryr.stack.postgres import Postgres
from tests.conftest import StackFacts
from tests.integration.stack_cli import cli

pytestmark = pytest.mark.stack

NAMES = ("keystone", "neutron-keystone")
PIDFILES = ("keystone", "neutron-server-keystone")
# ML2/OVN's servers reload their hash ring every 30 s (HASH_RING_CACHE_TIMEOUT).
HASH_RING_CACHE = 30.0


def rows(layout: Layout) -> dict[str, lifecycle.Health]:
    return {h.name: h for h in lifecycle.status(layout) if h.name in NAMES}


def processes(layout: Layout) -> set[int]:
    roots = {proc.read_pid(layout.pidfile(name)) for name in PIDFILES}
    alive = {pid for pid in roots if pid is not None and proc.alive(pid)}
    return alive | {child for pid in alive for child in proc.descendants(pid)}


def hash_ring_rows(layout: Layout) -> int:
    sql = f"SELECT count(*) FROM ovn_hash_ring WHERE hostname = '{HOST}'"
    return int(Postgres(layout).psql(sql, "neutron"))


@pytest.fixture
def layout(stack: StackFacts) -> Layout:
    """The stack with Keystone, as ``up --keystone`` leaves it (the token lifetime as it was)."""
    lifecycle.start(stack.layout, identity=lifecycle.KeystoneChoice(on=True))
    assert all(h.healthy for h in rows(stack.layout).values()), rows(stack.layout)
    return stack.layout


def test_second_up_changes_nothing_and_status_reports_keystone(layout: Layout) -> None:
    before = processes(layout)
    began = time.monotonic()
    done = cli("up", "--keystone")
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert processes(layout) == before
    status = cli("status")
    assert status.returncode == 0, status.stdout
    lines = {line.split()[0]: line for line in status.stdout.splitlines() if line.strip()}
    assert "ok" in lines["keystone"] and "http://127.0.0.1:5000/v3" in lines["keystone"]
    assert "ok" in lines["neutron-keystone"] and NEUTRON_KEYSTONE_URL in lines["neutron-keystone"]
    assert "noauth" in lines["neutron"], "the noauth Neutron is left as it was"
    # The protected Neutron refuses a request without a token; Keystone gives the kuryr user one.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{NEUTRON_KEYSTONE_URL}/v2.0/networks", timeout=10)
    assert refused.value.code == 401
    password = keystone.Keystone(layout, Postgres(layout)).password("kuryr")
    assert keystone_api.password_token("kuryr", password, keystone.PROJECT)
    print(f"second up --keystone: {took:.1f} s")


def test_keystone_and_its_neutron_recover_from_sigkill(layout: Layout) -> None:
    victims = processes(layout)
    assert len(victims) >= 3, victims
    assert hash_ring_rows(layout) == 1
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert proc.wait_for(lambda: not any(proc.alive(pid) for pid in victims), 10)
    assert not any(h.healthy for h in rows(layout).values()), rows(layout)

    began = time.monotonic()
    lifecycle.start(layout)
    took = time.monotonic() - began
    assert all(h.healthy for h in rows(layout).values()), rows(layout)
    assert processes(layout).isdisjoint(victims)
    # The killed server's row went; the new one registered its own.
    assert hash_ring_rows(layout) == 1
    print(f"keystone and neutron-keystone back in {took:.1f} s")
    # The noauth server may still hold the killed server's row in its cached ring: give it
    # the time to reload, so that no later test loses an OVN event to it.
    time.sleep(HASH_RING_CACHE)
