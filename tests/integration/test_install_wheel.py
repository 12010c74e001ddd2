"""README "Install", run as a new user would: the wheel built from the checkout, pip-installed
with its dependencies from PyPI into a fresh venv, the example config and the systemd unit it
installs, the unit enabled and verified, and ``kuryr serve`` from that venv answering
``/Plugin.Activate`` on a socket of its own, telling systemd READY=1 once it does.

The commands are the README's (a test checks they are there, word for word); ``ROOT``, a
temporary directory, stands for ``/``: the venv is ``ROOT/opt/kuryr``, the files go to
``ROOT/etc``, and systemctl and systemd-analyze get ``--root=ROOT`` (no systemd runs here, so
the unit is enabled and verified, not started). The daemon talks to the stack's Neutron
(noauth) with a socket and state directory of its own; the stack's daemon is not touched.
Nothing is kept between runs: the wheel, the venv and pip's downloads are made each time
(about 30 s; pip runs with --no-cache-dir).
"""

from __future__ import annotations

import filecmp
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kuryr import config
from kuryr.stack.layout import NEUTRON_URL
from kuryr.stack.plugin_build import copy_source, project_version
from tests.fuzz_requests import post

REPO = Path(__file__).resolve().parents[2]
WHEEL = f"kuryr-{project_version(REPO / 'pyproject.toml')}-py3-none-any.whl"

# README "Install", in order; the test runs each under ROOT (on_root).
PIP_INSTALL = (
    "python3 -m venv /opt/kuryr",
    f"/opt/kuryr/bin/pip install dist/{WHEEL}",
    "mkdir -p /etc/kuryr",
    "cp /opt/kuryr/share/kuryr/kuryr.conf.example /etc/kuryr/kuryr.conf",
)
SERVE = "/opt/kuryr/bin/kuryr --config-file /etc/kuryr/kuryr.conf serve"
SYSTEMD = (
    "cp /opt/kuryr/share/kuryr/systemd/kuryr.service /etc/systemd/system/",
    "systemd-analyze verify kuryr.service",
    "systemctl enable kuryr.service",
)
# `make wheel`'s recipe (the Makefile), run on a copy of the checkout's source.
MAKE_WHEEL = "pip wheel --no-deps -w dist ."

START_TIMEOUT = 60.0


def on_root(command: str, root: Path) -> list[str]:
    """``command`` with ``/opt`` and ``/etc`` under ``root``, and systemd's tools told so."""
    argv = [re.sub(r"^/(opt|etc)/", f"{root}/\\1/", word) for word in shlex.split(command)]
    if argv[0] == "systemctl":
        argv[1:1] = [f"--root={root}", "--quiet"]
    elif argv[0] == "systemd-analyze":
        # Offline: no man pages to look up, no generators to run.
        argv[2:2] = [f"--root={root}", "--man=no", "--generators=no"]
    return argv


def clean_env() -> dict[str, str]:
    """The environment a new user's shell would have: none of the test run's Python or
    Kuryr settings (PYTHONPATH would let the venv import the checkout; KURYR_* override)."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "NOTIFY_SOCKET", "PIP_CACHE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("KURYR_")}
    env["PIP_NO_CACHE_DIR"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(argv: list[str], cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@dataclass
class Installed:
    work: Path  # where `make wheel` ran: dist/ is here
    root: Path  # stands for /

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "kuryr"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wt-install")
    source, root = work / "source", work / "root"
    copy_source(REPO, source)
    (work / "dist").mkdir()
    make_wheel = shlex.split(MAKE_WHEEL)
    run([sys.executable, "-m", *make_wheel[:-1], "./source"], work)
    assert (work / "dist" / WHEEL).is_file(), sorted((work / "dist").iterdir())
    # A system's unit directory for systemd-analyze --root (sysinit.target, docker.service...).
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for command in PIP_INSTALL:
        run(on_root(command, root), work)
    return Installed(work, root)


def test_the_readme_shows_the_commands_this_test_runs() -> None:
    readme = (REPO / "README.md").read_text()
    install = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    for command in (*PIP_INSTALL, SERVE, *SYSTEMD, "make wheel", MAKE_WHEEL):
        assert command in install, command


def test_the_wheel_installs_the_example_config_and_the_unit(installed: Installed) -> None:
    share = installed.venv / "share" / "kuryr"
    for name in ("kuryr.conf.example", "systemd/kuryr.service"):
        assert filecmp.cmp(share / name, REPO / "share" / "kuryr" / name, shallow=False), name
    copied = installed.root / "etc" / "kuryr" / "kuryr.conf"
    assert config.load(copied, environ={}).neutron.auth_type == "password"
    # The venv runs the wheel's code, not the checkout's.
    where = run(
        [str(installed.venv / "bin" / "python"), "-c", "import kuryr; print(kuryr.__file__)"],
        installed.work,
    )
    assert where.strip().startswith(str(installed.venv / "lib")), where


def test_the_unit_verifies_against_the_installed_kuryr_and_is_enabled_for_docker(
    installed: Installed,
) -> None:
    root = installed.root
    outputs = [run(on_root(command, root), installed.work) for command in SYSTEMD]
    # systemd-analyze exits 0 on keys it cannot parse; it would print them.
    assert outputs[1] == ""
    wants = root / "etc/systemd/system/docker.service.wants/kuryr.service"
    assert wants.is_symlink()
    assert os.readlink(wants) == "/etc/systemd/system/kuryr.service"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    """What systemd listens on for a Type=notify service's READY=1."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(START_TIMEOUT)
        yield sock, tmp_path / "notify"


def configure_for_the_stack(conf: Path, sock: Path, state: Path) -> None:
    """The edit the example asks for ("fill in [neutron]"), for the stack's noauth Neutron;
    and a socket and state directory of this test's (the stack's daemon has the defaults)."""
    from kuryr.stack.ovs import hostname

    parser = config.new_parser()
    parser.read(conf)
    parser.remove_section("neutron")
    parser["neutron"] = {"auth_type": "none", "endpoint": NEUTRON_URL}
    parser["DEFAULT"]["socket"] = str(sock)
    parser["DEFAULT"]["state_dir"] = str(state)
    parser["binding"]["host"] = hostname()
    with conf.open("w") as out:
        parser.write(out)


def test_kuryr_serve_from_the_venv_answers_on_its_own_socket(
    stack: object, installed: Installed, notify_socket: tuple[socket.socket, Path]
) -> None:
    notify, notify_path = notify_socket
    root = installed.root
    sock, log = root / "run" / "kuryr.sock", installed.work / "serve.log"
    configure_for_the_stack(root / "etc/kuryr/kuryr.conf", sock, root / "var/lib/kuryr")
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            on_root(SERVE, root),
            cwd=installed.work,
            env={**clean_env(), "NOTIFY_SOCKET": str(notify_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        try:
            ready = notify.recv(4096).decode()
        except TimeoutError:
            pytest.fail(f"no READY=1 within {START_TIMEOUT:.0f}s\n{log.read_text()}")
        assert ready.splitlines()[0] == "READY=1", ready
        print(f"READY=1 {time.monotonic() - started:.1f}s after start")
        assert post(sock, "/Plugin.Activate", b"") == (
            200,
            {"Implements": ["NetworkDriver", "IpamDriver"]},
        )
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, log.read_text()
        assert notify.recv(4096) == b"STOPPING=1"
        assert not sock.exists()
        assert "Traceback" not in log.read_text()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
