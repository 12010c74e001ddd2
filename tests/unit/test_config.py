"""Config files as kuryr-libnetwork operators write them, and Kuryr's own keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuryr import config
from kuryr.config import Config

KURYR_LIBNETWORK_KEYSTONE = """
[DEFAULT]
bindir = /usr/libexec/kuryr
capability_scope = local
debug = True

[neutron]
auth_url = http://127.0.0.1/identity
auth_type = password
username = admin
password = s3cret
user_domain_name = Default
project_name = service
project_domain_name = Default
region_name = RegionTwo
default_subnetpool_v4 = kuryr
default_subnetpool_v6 = kuryr6
vif_plugging_timeout = 20
enable_dhcp = False
"""

NOAUTH = """
[DEFAULT]
socket = /run/srv-test/kuryr.sock
socket_group = docker
state_dir = /tmp/srv-state
metrics_listen = 127.0.0.1:9311

[neutron]
auth_type = none
endpoint = http://127.0.0.1:9696
timeout = 2.5
retries = 5

[binding]
host = srv-host
integration_bridge = br-srv
veth_dst_prefix = eth

[pool]
min = 2
max = 8
batch = 4
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kuryr.conf"
    path.write_text(text)
    return path


def test_kuryr_libnetwork_keystone_file(tmp_path: Path) -> None:
    conf = config.load(write(tmp_path, KURYR_LIBNETWORK_KEYSTONE))
    assert conf.debug is True
    neutron = conf.neutron
    assert neutron.auth_type == "password"
    assert neutron.region_name == "RegionTwo"
    assert neutron.vif_plugging_timeout == 20.0
    assert neutron.enable_dhcp is False
    # Keystone options pass through to keystoneauth; [DEFAULT] keys do not leak into them.
    assert neutron.auth == {
        "auth_url": "http://127.0.0.1/identity",
        "username": "admin",
        "password": "s3cret",
        "user_domain_name": "Default",
        "project_name": "service",
        "project_domain_name": "Default",
    }
    assert conf.socket == Config().socket


def test_noauth_file_with_every_kuryr_section(tmp_path: Path) -> None:
    conf = config.load(write(tmp_path, NOAUTH))
    assert conf.socket == Path("/run/srv-test/kuryr.sock")
    assert conf.socket_group == "docker"
    assert conf.state_dir == Path("/tmp/srv-state")
    assert conf.metrics_listen == "127.0.0.1:9311"
    assert (conf.neutron.auth_type, conf.neutron.endpoint) == ("none", "http://127.0.0.1:9696")
    assert (conf.neutron.timeout, conf.neutron.retries) == (2.5, 5)
    assert conf.neutron.auth == {}
    assert conf.binding.host == "srv-host"
    assert conf.binding.integration_bridge == "br-srv"
    assert conf.binding.ovsdb_connection == Config().binding.ovsdb_connection
    assert (conf.pool.min, conf.pool.max, conf.pool.batch) == (2, 8, 4)


def test_defaults_section_only(tmp_path: Path) -> None:
    conf = config.load(write(tmp_path, "[DEFAULT]\ndebug = false\n"))
    assert conf == Config()


def test_config_env_variable_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURYR_CONFIG", str(write(tmp_path, NOAUTH)))
    assert config.load().binding.host == "srv-host"


def test_environment_overrides_the_files_keys(tmp_path: Path) -> None:
    environ = {
        "KURYR_DEBUG": "true",
        "KURYR_NEUTRON_ENDPOINT": "http://10.0.0.5:9696",
        "KURYR_BINDING_HOST": "env-host",
        "KURYR_POOL_MAX": "16",
    }
    conf = config.load(write(tmp_path, NOAUTH), environ)
    assert conf.debug is True
    assert conf.neutron.endpoint == "http://10.0.0.5:9696"
    assert conf.binding.host == "env-host"
    assert conf.pool.max == 16
    # What the environment does not name stays the file's.
    assert conf.neutron.auth_type == "none"


def test_environment_alone_configures_without_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DEFAULT_CONFIG_FILE", tmp_path / "absent.conf")
    environ = {
        "KURYR_CONFIG": "",
        "KURYR_NEUTRON_AUTH_TYPE": "none",
        "KURYR_NEUTRON_ENDPOINT": "http://127.0.0.1:9696",
        "KURYR_STATE_DIR": str(tmp_path),
    }
    conf = config.load(environ=environ)
    assert (conf.neutron.auth_type, conf.neutron.endpoint) == ("none", "http://127.0.0.1:9696")
    assert conf.state_dir == tmp_path


def test_empty_variables_leave_the_files_value(tmp_path: Path) -> None:
    environ = {"KURYR_NEUTRON_ENDPOINT": "", "KURYR_DEBUG": ""}
    conf = config.load(write(tmp_path, NOAUTH), environ)
    assert conf.neutron.endpoint == "http://127.0.0.1:9696"
    assert conf.debug is False


def test_variables_that_name_no_key_are_not_overrides() -> None:
    environ = {
        "KURYR_CONFIG": "/etc/kuryr/kuryr.conf",
        "KURYR_STACK_DIR": "/var/lib/kuryr-stack",
        "KURYR_DOCKER_IPAM": "1",
        "KURYR_NEUTRON_": "x",
        "OS_AUTH_URL": "http://keystone",
    }
    assert list(config.env_overrides(environ)) == []


def test_neutron_auth_options_come_from_the_environment() -> None:
    environ = {"KURYR_NEUTRON_AUTH_TYPE": "password", "KURYR_NEUTRON_USERNAME": "kuryr"}
    conf = config.load(Path("/dev/null"), environ)
    assert conf.neutron.auth_type == "password"
    assert conf.neutron.auth == {"username": "kuryr"}


def test_a_bad_value_from_the_environment_is_an_error() -> None:
    with pytest.raises(ValueError):
        config.load(Path("/dev/null"), {"KURYR_POOL_MAX": "many"})


def test_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        config.load(tmp_path / "absent.conf")


def test_bad_number_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        config.load(write(tmp_path, "[neutron]\ntimeout = soon\n"))


def test_bookkeeping_defaults_to_deferred(tmp_path: Path) -> None:
    conf = config.load(write(tmp_path, NOAUTH))
    assert conf.pool.bookkeeping == config.BOOKKEEPING_DEFERRED


@pytest.mark.parametrize(
    ("written", "mode"),
    [
        ("immediate", config.BOOKKEEPING_IMMEDIATE),
        ("deferred", config.BOOKKEEPING_DEFERRED),
        (" Immediate ", config.BOOKKEEPING_IMMEDIATE),
    ],
)
def test_bookkeeping_mode_is_read(tmp_path: Path, written: str, mode: str) -> None:
    conf = config.load(write(tmp_path, f"[pool]\nmax = 0\nbookkeeping = {written}\n"))
    assert (conf.pool.bookkeeping, conf.pool.max) == (mode, 0)


@pytest.mark.parametrize("written", ["sync", "", "immediately", "deferred,immediate"])
def test_unknown_bookkeeping_mode_is_an_error_naming_the_choices(
    tmp_path: Path, written: str
) -> None:
    with pytest.raises(ValueError, match=r"\[pool\] bookkeeping = .*deferred, immediate"):
        config.load(write(tmp_path, f"[pool]\nbookkeeping = {written}\n"))


def test_reconcile_defaults_and_keys(tmp_path: Path) -> None:
    assert (Config().reconcile.interval, Config().reconcile.grace) == (30.0, 30.0)
    conf = config.load(write(tmp_path, "[reconcile]\ninterval = 10\ngrace = 25\n"))
    assert (conf.reconcile.interval, conf.reconcile.grace) == (10.0, 25.0)
    assert config.load(write(tmp_path, "[reconcile]\ninterval = 0\n")).reconcile.interval == 0


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("[reconcile]\ninterval = -1\n", r"\[reconcile\] interval must be 0 \(off\) or positive"),
        ("[reconcile]\ngrace = 5\n", r"\[reconcile\] grace \(5\) must be at least request_timeout"),
        (
            "[DEFAULT]\nrequest_timeout = 40\n",
            r"\[reconcile\] grace \(30\) must be at least request_timeout \(40\)",
        ),
    ],
)
def test_unsafe_reconcile_settings_are_refused(tmp_path: Path, written: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config.load(write(tmp_path, written))


@pytest.mark.parametrize(("written", "on"), [(None, True), ("false", False), ("true", True)])
def test_tx_checksum_offload_is_read(tmp_path: Path, written: str | None, on: bool) -> None:
    line = f"tx_checksum_offload = {written}\n" if written is not None else ""
    conf = config.load(write(tmp_path, f"[binding]\nhost = h2\n{line}"))
    assert conf.binding.tx_checksum_offload is on


def test_tx_checksum_offload_that_is_no_boolean_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        config.load(write(tmp_path, "[binding]\ntx_checksum_offload = sometimes\n"))


def test_pool_sizing_defaults_and_keys(tmp_path: Path) -> None:
    pool = config.load(write(tmp_path, "[pool]\nmax = 40\n")).pool
    assert (pool.min, pool.initial, pool.window, pool.idle_after) == (2, 4, 10.0, 300.0)

    text = "[pool]\nmin = 1\nmax = 8\nbatch = 2\ninitial = 3\nwindow = 5\nidle_after = 0\n"
    pool = config.load(write(tmp_path, text)).pool
    assert (pool.min, pool.max, pool.batch) == (1, 8, 2), "kuryr-libnetwork's keys"
    assert (pool.initial, pool.window, pool.idle_after) == (3, 5.0, 0.0)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("initial = -1", r"\[pool\] initial must be 0 or more"),
        ("idle_after = -5", r"\[pool\] idle_after must be 0 or more"),
        ("window = 0", r"\[pool\] window must be positive"),
        ("min = -2", r"\[pool\] min must be 0 or more"),
    ],
)
def test_meaningless_pool_sizes_are_refused(tmp_path: Path, written: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config.load(write(tmp_path, f"[pool]\nmax = 4\n{written}\n"))


def test_router_is_read_and_kept_out_of_the_auth_options(tmp_path: Path) -> None:
    loaded = config.load(write(tmp_path, "[neutron]\nauth_type = none\nrouter = kuryr-router \n"))
    assert loaded.neutron.router == "kuryr-router"
    assert "router" not in loaded.neutron.auth
    assert config.load(write(tmp_path, "[neutron]\n")).neutron.router == ""


def test_capability_scope_is_local_unless_set(tmp_path: Path) -> None:
    """kuryr-libnetwork's key, once ignored, now sets GetCapabilities' scope (Swarm)."""
    assert config.load(write(tmp_path, NOAUTH)).capability_scope == "local"
    conf = config.load(write(tmp_path, "[DEFAULT]\ncapability_scope = Global\n"))
    assert conf.capability_scope == "global"
    env = {"KURYR_CAPABILITY_SCOPE": "global"}
    assert config.load(write(tmp_path, NOAUTH), environ=env).capability_scope == "global"
    with pytest.raises(ValueError, match="capability_scope = 'swarm': expected one of local"):
        config.load(write(tmp_path, "[DEFAULT]\ncapability_scope = swarm\n"))
