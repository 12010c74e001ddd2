"""Disruptive stack lifecycle: SIGKILL everything, bad environments, down, purge cycles.

These tests stop the shared stack; conftest orders this file after every other test, and
each test leaves the stack up again when it ends."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuryr.stack import lifecycle, netdev, postgres, proc
from kuryr.stack.layout import OVN_RUN, OVS_RUN, Layout
from tests.conftest import StackFacts, bring_up
from tests.integration.stack_cli import cli

pytestmark = pytest.mark.stack


def stack_processes(layout: Layout) -> set[int]:
    """Every live process the stack started: the daemons and all their descendants."""
    pidfiles = [
        *OVS_RUN.glob("*.pid"),
        *OVN_RUN.glob("*.pid"),
        *layout.run.glob("*.pid"),
        layout.sub("postgres") / "postmaster.pid",
    ]
    roots = {pid for pid in map(proc.read_pid, pidfiles) if pid is not None and proc.alive(pid)}
    return roots | {child for pid in roots for child in proc.descendants(pid)}


def required_unhealthy(layout: Layout) -> list[lifecycle.Health]:
    return [h for h in lifecycle.status(layout) if not h.healthy and h.name not in {"kuryr"}]


@pytest.fixture
def stopped(stack: StackFacts) -> Iterator[Layout]:
    """The stack down for the test's duration, brought back up afterwards."""
    assert lifecycle.down(stack.layout) == []
    yield stack.layout
    bring_up(stack.layout)


def test_up_recovers_after_every_process_is_killed(stack: StackFacts) -> None:
    victims = stack_processes(stack.layout)
    assert len(victims) >= 7
    for pid in victims:
        # A short-lived child (a docker shim, a postgres backend) may have exited since listed.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert proc.wait_for(lambda: not any(proc.alive(pid) for pid in victims), 10)
    assert required_unhealthy(stack.layout) != []
    bring_up(stack.layout)
    assert required_unhealthy(stack.layout) == []


@pytest.mark.parametrize(("port", "component"), [(9696, "neutron"), (6641, "ovn-central")])
def test_port_taken_by_someone_else(stopped: Layout, port: int, component: str) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        done = cli("up")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"kuryr stack: {component}: port {port} is taken by pid {os.getpid()}")


def test_component_failing_to_start_shows_its_log(stopped: Layout) -> None:
    broken = Path("/etc/postgresql") / postgres.version() / postgres.CLUSTER / "conf.d" / "zz.conf"
    broken.write_text("shared_buffers = 'not a size'\n")
    try:
        done = cli("up")
    finally:
        broken.unlink()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("kuryr stack: postgres: pg_ctlcluster")
    assert any("shared_buffers" in line for line in lines[1:])


def test_down_leaves_no_process_or_link(stack: StackFacts) -> None:
    bring_up(stack.layout)
    started = stack_processes(stack.layout)
    links = netdev.existing_links()
    assert {"br-int", "ovs-netdev", "docker0", "br-ex"} <= links
    done = cli("down")
    try:
        assert done.returncode == 0, done.stderr
        assert [pid for pid in started if proc.alive(pid)] == []
        assert netdev.existing_links() & {"br-int", "ovs-netdev", "docker0", "br-ex"} == set()
        # The host's address on br-ex went with it: no route to the external network is left.
        routes = subprocess.run(
            ["ip", "-4", "route", "show", "172.24.4.0/24"], capture_output=True, text=True
        ).stdout
        assert routes.strip() == ""
        assert not OVS_RUN.exists() and not OVN_RUN.exists()
    finally:
        bring_up(stack.layout)


def test_purge_then_up_three_times(stack: StackFacts) -> None:
    for _ in range(3):
        done = cli("down", "--purge")
        assert done.returncode == 0, done.stderr
        assert not stack.layout.root.exists()
        clusters = subprocess.run(
            ["pg_lsclusters", "-h"], capture_output=True, text=True, check=True
        ).stdout
        assert f" {postgres.CLUSTER} " not in clusters
        done = cli("up")
        assert done.returncode == 0, done.stderr
        assert required_unhealthy(stack.layout) == []
