"""``kuryr stack up``'s orchestration: which failures stop it, and that every one fails it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kuryr.stack import host, lifecycle
from kuryr.stack.component import Component
from kuryr.stack.errors import StackError
from kuryr.stack.layout import Layout


@dataclass
class Part:
    """A component that starts, or fails to, as told; it is healthy once started."""

    name: str
    fails: bool = False
    started: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return Path(f"/nonexistent/{self.name}.log")

    def start(self) -> None:
        if self.fails:
            raise StackError(self.name, f"{self.name} would not start", self.log)
        self.started.append(self.name)

    def stop(self) -> None:
        """Nothing runs."""

    def check(self) -> tuple[bool, str]:
        healthy = self.name in self.started
        return healthy, "started" if healthy else "not running"

    def purge(self) -> None:
        """Nothing is kept."""


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    # The host snapshot lists the machine's links: irrelevant to the order under test.
    monkeypatch.setattr(host, "remember", lambda _layout: None)
    return Layout(tmp_path)


def given(monkeypatch: pytest.MonkeyPatch, *names: str, failing: str) -> list[str]:
    started: list[str] = []
    parts: list[Component] = [Part(n, fails=n == failing, started=started) for n in names]
    monkeypatch.setattr(lifecycle, "components", lambda _layout: parts)
    return started


def test_a_failing_daemon_fails_up_after_the_rest_started(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = given(monkeypatch, "neutron", "kuryr", "docker", failing="kuryr")
    with pytest.raises(StackError) as caught:
        lifecycle.up(layout)
    assert str(caught.value) == "kuryr: kuryr would not start"
    assert caught.value.log == Path("/nonexistent/kuryr.log")
    assert started == ["neutron", "docker"]


def test_start_reports_a_failing_daemon_in_its_row(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    given(monkeypatch, "neutron", "kuryr", "docker", failing="kuryr")
    report = lifecycle.start(layout)
    assert [(h.name, h.healthy, h.detail) for h in report] == [
        ("neutron", True, "started"),
        ("kuryr", False, "kuryr would not start"),
        ("docker", True, "started"),
    ]


def test_any_other_failure_stops_up_at_once(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = given(monkeypatch, "neutron", "kuryr", "docker", failing="neutron")
    with pytest.raises(StackError, match=r"^neutron: neutron would not start$"):
        lifecycle.up(layout)
    assert started == []
