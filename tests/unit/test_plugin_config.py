"""The managed plugin's config.json: what Docker is told the daemon needs, checked against the
daemon's own defaults so that the two cannot drift apart."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from kuryr import config as config_mod
from kuryr.backends import dockerd
from kuryr.config import DEFAULT_CONFIG_FILE, Config
from kuryr.stack import plugin_config

# Where Docker puts the plugin's socket directory inside the plugin.
DOCKER_PLUGIN_RUNTIME = PurePosixPath("/run/docker/plugins")


def conf() -> dict[str, Any]:
    return plugin_config.config("1.2.3")


def mounts() -> dict[str, dict[str, Any]]:
    return {m["Name"]: m for m in conf()["Mounts"]}


def test_both_drivers_on_the_daemons_default_socket() -> None:
    interface = conf()["Interface"]
    assert interface["Types"] == ["docker.networkdriver/1.0", "docker.ipamdriver/1.0"]
    assert PurePosixPath(Config.socket) == DOCKER_PLUGIN_RUNTIME / interface["Socket"]


def test_host_network_and_net_admin() -> None:
    c = conf()
    assert c["Network"] == {"Type": "host"}
    assert c["Linux"]["Capabilities"] == ["CAP_NET_ADMIN"]
    assert c["Linux"]["AllowAllDevices"] is False
    assert (c["PidHost"], c["IpcHost"]) == (False, False)


def test_entrypoint_is_the_venvs_kuryr_serve() -> None:
    assert conf()["Entrypoint"] == ["/opt/kuryr/bin/kuryr", "serve"]
    assert "1.2.3" in conf()["Description"]


def test_mounts_are_the_daemons_default_paths() -> None:
    m = mounts()
    ovsdb = Config().binding.ovsdb_connection.removeprefix("unix:")
    assert m["ovsdb"]["Source"] == str(PurePosixPath(ovsdb).parent)
    assert m["state"]["Source"] == str(Config().state_dir)
    assert m["config"]["Source"] == str(DEFAULT_CONFIG_FILE.parent)
    assert m["docker"]["Source"] == str(dockerd.SOCKET)
    for mount in m.values():
        # The same path inside: the daemon needs no other configuration than the host's.
        assert mount["Destination"] == mount["Source"]
        assert mount["Type"] == "bind"


def test_every_mounts_source_is_settable_and_only_the_config_is_read_only() -> None:
    for name, mount in mounts().items():
        assert mount["Settable"] == ["source"]
        assert mount["Options"][0] == "rbind"
        assert mount["Options"][1] == ("ro" if name == "config" else "rw")


def test_every_setting_is_settable_and_empty_by_default() -> None:
    env = conf()["Env"]
    assert env[0]["Name"] == "KURYR_CONFIG"
    for setting in env:
        assert setting["Settable"] == ["value"]
        # Empty leaves the file's value (kuryr.config's overrides skip empty variables).
        assert setting["Value"] == ""
        assert setting["Description"]


def test_every_setting_but_the_config_file_overrides_a_key() -> None:
    for setting in conf()["Env"][1:]:
        found = list(config_mod.env_overrides({setting["Name"]: "x"}))
        assert len(found) == 1, setting["Name"]


def test_settings_reach_the_daemons_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No file on this machine may decide: the plugin's defaults alone.
    monkeypatch.setattr(config_mod, "DEFAULT_CONFIG_FILE", tmp_path / "absent.conf")
    environ = {s["Name"]: s["Value"] for s in conf()["Env"]}
    environ |= {"KURYR_NEUTRON_AUTH_TYPE": "none", "KURYR_NEUTRON_ENDPOINT": "http://n:9696"}
    loaded = config_mod.load(environ=environ)
    assert (loaded.neutron.auth_type, loaded.neutron.endpoint) == ("none", "http://n:9696")


def test_rendered_json_is_the_config() -> None:
    assert json.loads(plugin_config.render("1.2.3")) == conf()
