"""``kuryr stack up --plugin``: which Kuryr the stack runs, where it comes in the order, and
what the managed plugin is given; nothing here talks to dockerd."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuryr import config as config_mod
from kuryr.config import Config
from kuryr.stack import lifecycle, managed
from kuryr.stack.daemon import KuryrDaemon
from kuryr.stack.docker import Docker
from kuryr.stack.layout import Layout


def names(layout: Layout) -> list[tuple[str, type]]:
    return [(c.name, type(c)) for c in lifecycle.components(layout)][-2:]


def test_the_bare_daemon_comes_before_dockerd(tmp_path: Path) -> None:
    assert names(Layout(tmp_path)) == [("kuryr", KuryrDaemon), ("dockerd", Docker)]


def test_the_managed_plugin_comes_after_dockerd(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    (tmp_path / managed.MODE_FILE).write_text("plugin\n")
    assert names(layout) == [("dockerd", Docker), ("kuryr", managed.KuryrPlugin)]
    # up's rule for the daemon's failure holds for the plugin too.
    assert managed.KuryrPlugin.name in lifecycle.NOT_BLOCKING


def test_switching_to_the_plugin_stops_the_bare_daemon_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(KuryrDaemon, "stop", lambda self: stopped.append("daemon"))
    layout = Layout(tmp_path)
    managed.switch(layout, True)
    assert stopped == ["daemon"]
    assert managed.plugin_mode(layout)
    managed.switch(layout, True)
    assert stopped == ["daemon"]


def test_switching_back_removes_the_plugin_from_a_running_dockerd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done: list[str] = []
    monkeypatch.setattr(Docker, "start", lambda self: done.append("dockerd"))
    monkeypatch.setattr(managed.KuryrPlugin, "remove", lambda self: done.append("removed"))
    layout = Layout(tmp_path)
    (tmp_path / managed.MODE_FILE).write_text("plugin\n")
    managed.switch(layout, False)
    assert done == ["dockerd", "removed"]
    assert not managed.plugin_mode(layout)


def test_the_plugins_config_names_the_paths_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kuryr.stack.daemon.hostname", lambda: "chassis-1")
    layout = Layout(tmp_path)
    path = tmp_path / "kuryr.conf"
    path.write_text(managed.KuryrPlugin(layout).config_text())
    # Its Neutron keys come from the plugin's settings, which dockerd gives it as variables.
    settings = dict(setting.split("=", 1) for setting in managed.SETTINGS)
    inside = config_mod.load(path, settings)
    assert config_mod.load(path, {}).neutron.endpoint == ""
    bare_path = tmp_path / "bare.conf"
    bare_path.write_text(KuryrDaemon(layout).config_text())
    bare = config_mod.load(bare_path, {})
    assert (inside.socket, inside.state_dir) == (Config.socket, Config.state_dir)
    assert bare.state_dir == tmp_path / "kuryr-state"
    # Everything else, Neutron's keys included, is the bare daemon's.
    assert (inside.neutron, inside.binding, inside.pool) == (bare.neutron, bare.binding, bare.pool)


def test_code_digest_follows_the_daemons_code(tmp_path: Path) -> None:
    package = tmp_path / "kuryr"
    (package / "stack").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (package / "app.py").write_text("A = 1\n")
    (package / "stack" / "up.py").write_text("B = 1\n")
    before = managed.code_digest(package)
    (package / "stack" / "up.py").write_text("B = 2\n")
    assert managed.code_digest(package) == before
    (package / "app.py").write_text("A = 2\n")
    assert managed.code_digest(package) != before
