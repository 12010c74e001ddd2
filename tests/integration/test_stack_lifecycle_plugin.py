"""``kuryr stack up --plugin``: Kuryr as the managed Docker plugin on the shared stack, then
back to the bare daemon.

Disruptive (it replaces the stack's Kuryr daemon), so its name puts it with the lifecycle
tests, after every other test; it always leaves the stack on the bare daemon."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from kuryr.stack import lifecycle, managed, proc
from kuryr.stack.daemon import MARKER, activates
from kuryr.stack.layout import Layout
from tests.conftest import StackFacts

pytestmark = pytest.mark.stack

IMAGE = "kuryr/busybox"


def run(*argv: str, timeout: float = 120) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()}"
    return done.stdout


def kuryr_row(report: list[lifecycle.Health]) -> lifecycle.Health:
    return next(h for h in report if h.name == "kuryr")


@pytest.fixture
def on_plugin(stack: StackFacts) -> Iterator[Layout]:
    """The stack on the managed plugin for the test, on the bare daemon again afterwards."""
    try:
        yield stack.layout
    finally:
        lifecycle.up(stack.layout, plugin=False)


def test_up_plugin_serves_docker_then_no_plugin_goes_back(on_plugin: Layout) -> None:
    report = lifecycle.up(on_plugin, plugin=True)
    row = kuryr_row(report)
    assert row.healthy, row.detail
    assert f"managed plugin {managed.PLUGIN}:latest" in row.detail
    # Never beside the bare daemon.
    assert proc.running(on_plugin.pidfile("kuryr"), MARKER) is None
    assert not activates(on_plugin.plugin_sock)[0]
    first = json.loads(run("docker", "plugin", "inspect", managed.PLUGIN))[0]

    # A plain up keeps the plugin, and the same one while nothing changed.
    again = lifecycle.up(on_plugin)
    assert kuryr_row(again).healthy
    assert json.loads(run("docker", "plugin", "inspect", managed.PLUGIN))[0]["Id"] == first["Id"]

    net = f"plg-{secrets.token_hex(4)}"
    # Docker 20.10 resolves a managed plugin only by its tagged name ("-d kuryr" answers
    # "could not resolve driver kuryr in registry").
    driver = f"{managed.PLUGIN}:latest"
    run("docker", "network", "create", "-d", driver, "--ipam-driver", driver, net)
    try:
        addr = run("docker", "run", "--rm", "--net", net, IMAGE, "ip", "-o", "-4", "addr", "show")
        assert "eth0" in addr
        # Operator commands on the host reach the plugin's daemon through the shared state.
        status = run(
            sys.executable,
            "-m",
            "kuryr.cli",
            "--config-file",
            str(on_plugin.sub("kuryr.conf")),
            "status",
            "--json",
        )
        assert json.loads(status)
    finally:
        run("docker", "network", "rm", net)

    back = lifecycle.up(on_plugin, plugin=False)
    assert kuryr_row(back).healthy
    assert not managed.plugin_mode(on_plugin)
    listed = run("docker", "plugin", "ls", "--format", "{{.Name}}").split()
    assert f"{managed.PLUGIN}:latest" not in listed
    assert activates(on_plugin.plugin_sock)[0]
