"""Session fixtures shared by every test directory.

``stack`` brings the local stack up once per pytest run with the same code as
``kuryr stack up`` and yields the facts tests need. Tests that disrupt the shared stack
(killing it, purging it) live in files named ``test_stack_lifecycle*.py`` and always run last;
those that stop one component and restore it (:data:`DISRUPTING`) run just before them.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kuryr.stack import lifecycle, proc
from kuryr.stack.errors import StackError
from kuryr.stack.layout import DOCKER_SOCK, NEUTRON_URL, PLUGIN_SOCK, Layout
from kuryr.stack.ovs import hostname
from tests import evidence

DISRUPTIVE = "test_stack_lifecycle"
# Tests that stop one component (Neutron, dockerd) or kill the daemon, and restore it: after
# every other test, before the whole-stack lifecycle tests.
DISRUPTING = (
    "test_crash",
    "test_publish_crash",
    "test_neutron_down",
    "test_dockerd_restart",
    "test_bookkeeping_immediate",
    "test_migration",
    "test_multihost_dead",
)


@dataclass(frozen=True)
class StackFacts:
    """What a test needs to know about the running stack."""

    layout: Layout
    neutron_url: str
    chassis_hostname: str
    docker_sock: Path
    plugin_sock: Path
    kuryr_healthy: bool
    kuryr_detail: str

    @property
    def directory(self) -> Path:
        return self.layout.root


def bring_up(layout: Layout) -> list[lifecycle.Health]:
    """``kuryr stack up``, except that a daemon which does not start fails only the tests that
    need it (through ``kuryr_healthy``); any other failing component fails the caller."""
    try:
        report = lifecycle.start(layout)
    except StackError as exc:
        lines = proc.tail(exc.log) if exc.log else []
        pytest.fail(f"the stack cannot come up: {exc}\n" + "\n".join(lines), pytrace=False)
    broken = [h for h in report if not h.healthy and h.name not in lifecycle.NOT_BLOCKING]
    if broken:
        pytest.fail(f"the stack is unhealthy: {broken}", pytrace=False)
    return report


def facts(layout: Layout, report: list[lifecycle.Health]) -> StackFacts:
    kuryr = next(h for h in report if h.name == "kuryr")
    return StackFacts(
        layout=layout,
        neutron_url=NEUTRON_URL,
        chassis_hostname=hostname(),
        docker_sock=DOCKER_SOCK,
        plugin_sock=PLUGIN_SOCK,
        kuryr_healthy=kuryr.healthy,
        kuryr_detail=kuryr.detail,
    )


@pytest.fixture(scope="session")
def stack() -> Iterator[StackFacts]:
    layout = Layout.resolve(None)
    yield facts(layout, bring_up(layout))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that kill or purge the shared stack after all the others."""
    items.sort(
        key=lambda item: (
            2 if DISRUPTIVE in item.path.name else 1 if item.path.stem in DISRUPTING else 0
        )
    )


_BEGAN = pytest.StashKey[float]()
_RUN_DIR = pytest.StashKey[Path]()
_EVIDENCE = pytest.StashKey[list[evidence.Evidence]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUN_DIR] = evidence.run_dir(evidence.base_dir(), time.time())
    config.stash[_EVIDENCE] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing stack test keeps its evidence now: later tests may purge the stack."""
    report = yield
    if call.when == "setup":
        item.stash[_BEGAN] = call.start
    if report.failed and evidence.is_stack_test(item.path):
        name = evidence.dir_name_of(item.nodeid)
        directory = item.config.stash[_RUN_DIR] / (
            name if call.when == "call" else f"{name}-{call.when}"
        )
        began = item.stash.get(_BEGAN, call.start)
        item.config.stash[_EVIDENCE].append(
            evidence.collect(
                item.nodeid, report.longreprtext, began, call.stop, directory, evidence.stack_logs()
            )
        )
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    found = config.stash.get(_EVIDENCE, [])
    if found:
        terminalreporter.section("evidence of failing stack tests")
        for line in evidence.summary(found):
            terminalreporter.write_line(line)
