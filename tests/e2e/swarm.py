"""A Docker swarm of three simulated hosts, each running Kuryr as its managed plugin with
``capability_scope = global`` (kuryr.stack.simplugin): h2 the manager, h3 and h4 workers. Made
for one test and undone after it: the swarm left, the plugins removed, the bare daemons back,
and h4 removed again when the swarm added it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from kuryr.stack import hostplan, hosts, lifecycle
from kuryr.stack.layout import Layout
from kuryr.stack.simplugin import SimPlugin, build
from tests.e2e.multihost import Host, hosts_from

NODES = ("h2", "h3", "h4")


@dataclass(frozen=True)
class Swarm:
    manager: Host
    workers: list[Host]
    # Seconds: the plugins' build and install, and the swarm's init and joins.
    plugin_seconds: float
    swarm_seconds: float

    @property
    def nodes(self) -> list[Host]:
        return [self.manager, *self.workers]

    def node(self, name: str) -> Host:
        return next(n for n in self.nodes if n.name == name)


def _leave(node: Host, manager: bool) -> None:
    if node.docker("info", "-f", "{{.Swarm.LocalNodeState}}") != "inactive":
        node.docker("swarm", "leave", *(["--force"] if manager else []), timeout=60)
    # Swarm made it at the join; nothing else uses it on these hosts.
    if node.docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$"):
        node.docker("network", "rm", "docker_gwbridge", check=False)


@contextmanager
def swarm_of(layout: Layout, chassis: str) -> Iterator[Swarm]:
    made_h4 = not hostplan.host(layout.root, "h4").root.is_dir()
    lifecycle.start(layout, len(NODES) + 1)
    every = {h.name: h for h in hosts_from(hosts.describe(layout, chassis))}
    nodes = [every[name] for name in NODES]
    plugins = [SimPlugin(layout, hostplan.host(layout.root, name)) for name in NODES]
    try:
        started = time.monotonic()
        with lifecycle.locked(layout):
            bundle = build(layout)
            with ThreadPoolExecutor(len(plugins)) as pool:
                list(pool.map(lambda plugin: plugin.start(bundle), plugins))
        plugged = time.monotonic()
        manager, workers = nodes[0], nodes[1:]
        underlay = hostplan.host(layout.root, manager.name).underlay_ip
        manager.docker("swarm", "init", "--advertise-addr", underlay, timeout=60)
        token = manager.docker("swarm", "join-token", "-q", "worker")
        for worker in workers:
            ip = hostplan.host(layout.root, worker.name).underlay_ip
            worker.docker(
                "swarm", "join", "--token", token, "--advertise-addr", ip, f"{underlay}:2377"
            )
        yield Swarm(manager, workers, plugged - started, time.monotonic() - plugged)
    finally:
        for node in reversed(nodes):
            _leave(node, manager=node is nodes[0])
        with lifecycle.locked(layout):
            for plugin in plugins:
                plugin.stop()
            errors = hosts.remove(layout, hostplan.host(layout.root, "h4")) if made_h4 else []
        assert not errors, f"removing h4: {errors}"
