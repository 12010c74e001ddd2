"""A simulated host's Docker side: the Neutron relay into its namespace, its Kuryr daemon and
its dockerd.

The daemon and dockerd each run in the host's network namespace and in private mount and
UTS namespaces of their own: the host's ``run`` directory is mounted over ``/run`` (so its
dockerd's socket is ``/var/run/docker.sock`` and its plugin directory ``/run/docker/plugins``
there, as on any host, while kuryr-libnetwork's SandboxKey paths stay standard), and the
hostname is the host's name, its ``binding:host_id``. The daemon is the same code and venv as
the stack's own, with its own config, state and socket; it starts before dockerd so that
dockerd finds it when it restarts containers that have a restart policy."""

from __future__ import annotations

import sys

from kuryr.config import BindingConfig, Config
from kuryr.stack import daemon, docker, proc
from kuryr.stack.errors import StackError
from kuryr.stack.hostplan import SimHost
from kuryr.stack.layout import NEUTRON_PORT, NEUTRON_URL, write_if_changed

START_TIMEOUT = 30.0
# Mounts the host's run directory over /run, hides the machine's plugin specs, names the
# UTS namespace, then becomes the program ("$@").
_ENTER = (
    'mount --bind "$1" /run'
    ' && if [ -d /usr/lib/docker/plugins ]; then mount --bind "$2" /usr/lib/docker/plugins; fi'
    ' && hostname "$3" && shift 3 && exec "$@"'
)


def in_host(host: SimHost, argv: list[str]) -> list[str]:
    """``argv`` run inside the host: its network namespace, private mount and UTS ones."""
    return [
        "nsenter",
        f"--net={host.netns_path}",
        "unshare",
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "sh",
        "-c",
        _ENTER,
        "sh",
        str(host.runfs),
        str(host.plugin_specs),
        host.name,
        *argv,
    ]


class SimRelay:
    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.name = f"{host.name}/relay"
        self.pidfile = host.pidfile("nsrelay")
        self.marker = str(host.netns_path)

    def start(self) -> None:
        if proc.running(self.pidfile, self.marker) is not None:
            return
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "kuryr.stack.nsrelay",
            self.marker,
            str(NEUTRON_PORT),
            str(self.pidfile),
        ]
        pid = proc.spawn(argv, self.host.log("nsrelay"), None)
        # The relay writes its pidfile once it listens.
        if not proc.wait_for(lambda: proc.read_pid(self.pidfile) == pid or not proc.alive(pid), 10):
            raise StackError(self.name, "the Neutron relay did not start", self.host.log("nsrelay"))
        if proc.running(self.pidfile, self.marker) is None:
            raise StackError(self.name, "the Neutron relay exited", self.host.log("nsrelay"))

    def stop(self) -> None:
        proc.stop_pidfile(self.pidfile, self.marker, timeout=5)

    def check(self) -> tuple[bool, str]:
        if proc.running(self.pidfile, self.marker) is None:
            return False, "the Neutron relay is not running"
        return True, f"{NEUTRON_URL} inside {self.host.netns}"


class SimDaemon:
    def __init__(self, host: SimHost, tx_checksum_offload: bool = False, binding: str = "") -> None:
        """``binding``: more lines of the config's [binding] section, each ending in a
        newline (a simulated VM's nested mode, kuryr.stack.vms)."""
        self.host = host
        self.binding = binding
        self.name = f"{host.name}/kuryr"
        self.pidfile = host.pidfile("kuryr")
        self.marker = str(host.config)
        self.log = host.log("kuryr")
        self.tx_checksum_offload = tx_checksum_offload

    def config_text(self, managed: str = "") -> str:
        """The daemon's config; ``managed``: the scope of the same daemon run as the host's
        managed plugin instead (kuryr.stack.simplugin), its paths those it sees inside."""
        offload = "true" if self.tx_checksum_offload else "false"
        if managed:
            default = f"state_dir = {Config.state_dir}\ncapability_scope = {managed}"
            ovsdb = BindingConfig.ovsdb_connection
        else:
            default = f"socket = {self.host.plugin_sock}\nstate_dir = {self.host.state_dir}"
            ovsdb = f"unix:{self.host.ovs_sock}"
        return f"""[DEFAULT]
{default}

[neutron]
auth_type = none
endpoint = {NEUTRON_URL}

[binding]
host = {self.host.name}
ovsdb_connection = {ovsdb}
# OVS 3.1's userspace datapath drops tunnelled packets that carry checksum offload flags.
tx_checksum_offload = {offload}
{self.binding}
[pool]
min = 2
max = 4
batch = 2
initial = 2
bookkeeping_delay = 1

[reconcile]
interval = 10
grace = 20
"""

    def start(self) -> None:
        write_if_changed(self.host.config, self.config_text())
        sock = self.host.plugin_sock
        offset = daemon.log_size(self.log)
        pid = proc.running(self.pidfile, self.marker)
        if pid is not None and daemon.stale(pid, self.pidfile, self.host.config):
            proc.terminate(pid)
            pid = None
        if pid is None:
            sock.parent.mkdir(parents=True, exist_ok=True)
            sock.unlink(missing_ok=True)
            self.pidfile.parent.mkdir(parents=True, exist_ok=True)
            argv = [daemon.executable(), "--config-file", str(self.host.config), "serve"]
            pid = proc.spawn(in_host(self.host, argv), self.log, self.pidfile)
        started = pid

        def ready() -> bool:
            if not proc.alive(started):
                raise self._failed("the Kuryr daemon exited during start", offset)
            return daemon.activates(sock)[0]

        if not proc.wait_for(ready, START_TIMEOUT, 0.1):
            raise self._failed(f"the Kuryr daemon does not answer on {sock}", offset)

    def _failed(self, what: str, offset: int) -> StackError:
        said = daemon.last_line_since(self.log, offset)
        return StackError(self.name, f"{what}: {said}" if said else what, self.log)

    def stop(self) -> None:
        proc.stop_pidfile(self.pidfile, self.marker)
        self.host.plugin_sock.unlink(missing_ok=True)

    def check(self) -> tuple[bool, str]:
        if proc.running(self.pidfile, self.marker) is None:
            return False, "its Kuryr daemon is not running"
        ok, detail = daemon.activates(self.host.plugin_sock)
        return ok, "Kuryr daemon answers" if ok else detail


class SimDocker:
    def __init__(self, host: SimHost, storage_driver: str) -> None:
        self.host = host
        self.name = f"{host.name}/dockerd"
        self.pidfile = host.pidfile("dockerd")
        self.marker = str(host.docker_data)
        self.log = host.log("dockerd")
        self.storage_driver = storage_driver

    def _argv(self) -> list[str]:
        # Inside the host /var/run is its own run directory (see in_host).
        return [
            "dockerd",
            f"--config-file={self.host.root / 'daemon.json'}",
            f"--data-root={self.host.docker_data}",
            "--exec-root=/var/run/docker",
            "--host=unix:///var/run/docker.sock",
            f"--pidfile={self.pidfile}",
            f"--storage-driver={self.storage_driver}",
            f"--cgroup-parent={self.host.cgroup_parent}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--ip-forward=false",
        ]

    def ping(self) -> bool:
        return docker.ping(self.host.docker_sock)

    def start(self) -> None:
        if proc.running(self.pidfile, self.marker) is None:
            self.host.docker_sock.unlink(missing_ok=True)
            self.pidfile.unlink(missing_ok=True)
            write_if_changed(self.host.root / "daemon.json", "{}\n")
            pid = proc.spawn(in_host(self.host, self._argv()), self.log, None)
            if not proc.wait_for(lambda: self.ping() or not proc.alive(pid), START_TIMEOUT, 0.1):
                proc.terminate(pid)
                raise StackError(self.name, "dockerd did not answer in time", self.log)
            if not self.ping():
                raise StackError(self.name, "dockerd exited during start", self.log)
        docker.ensure_image(self.host.docker_sock, self.name, self.log)

    def clear(self) -> None:
        """Remove its containers and its Kuryr networks while its daemon still runs, so the
        daemon gives their Neutron ports and networks back."""
        cli = ["docker", "-H", self.host.docker_host]
        if not self.ping():
            return
        containers = proc.run(self.name, [*cli, "ps", "-aq"]).split()
        if containers:
            proc.run(self.name, [*cli, "rm", "-f", *containers], timeout=120)
        networks = proc.run(self.name, [*cli, "network", "ls", "-q", "--filter", "driver=kuryr"])
        if networks.split():
            proc.run(self.name, [*cli, "network", "rm", *networks.split()], timeout=120)

    def stop(self) -> None:
        # dockerd stops its containers and its containerd on SIGTERM.
        proc.stop_pidfile(self.pidfile, self.marker, timeout=30)
        self.host.docker_sock.unlink(missing_ok=True)

    def check(self) -> tuple[bool, str]:
        if proc.running(self.pidfile, self.marker) is None:
            return False, "its dockerd is not running"
        if not self.ping():
            return False, f"its dockerd does not answer on {self.host.docker_sock}"
        return True, self.host.docker_host
