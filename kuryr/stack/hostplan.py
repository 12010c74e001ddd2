"""The plan of the simulated Docker hosts ``h2`` … ``hN``: names, network namespaces,
underlay addresses, link names and where each host keeps its files. Pure: nothing here
touches the machine.

Every simulated host has a directory ``<stack>/hosts/<name>``. Its ``run`` subdirectory is
mounted over ``/run`` in the private mount namespaces of the host's dockerd and Kuryr
daemon, so inside the host the standard paths hold (``/var/run/docker.sock``,
``/run/docker/plugins``, ``/var/run/openvswitch/db.sock``) while from the machine they are
ordinary files below the host's directory."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

# The underlay that carries geneve between chassis: the machine's own host is .1 on its
# br-phy, host hK is .K on its own br-phy.
UNDERLAY = ipaddress.IPv4Network("192.168.250.0/24")
MAIN_UNDERLAY_IP = str(UNDERLAY.network_address + 1)
# The machine's chassis tunnels nothing while it is alone; ovn-encap-ip must still be set.
LOOPBACK_ENCAP_IP = "127.0.0.1"
PHY_BRIDGE = "br-phy"
INNER_LINK = "phy0"
# About 170 MB each: a cap that keeps a typo from filling the machine.
MAX_HOSTS = 9
_NAME = re.compile(r"^h([2-9])$")


class PlanError(ValueError):
    """A host count or name outside the plan."""


@dataclass(frozen=True)
class SimHost:
    """One simulated host ``h<index>`` and the names and paths it uses."""

    index: int
    hosts_dir: Path

    @property
    def name(self) -> str:
        return f"h{self.index}"

    @property
    def netns(self) -> str:
        return f"kuryr-{self.name}"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def underlay_ip(self) -> str:
        return str(UNDERLAY.network_address + self.index)

    @property
    def underlay_cidr(self) -> str:
        return f"{self.underlay_ip}/{UNDERLAY.prefixlen}"

    @property
    def root_link(self) -> str:
        """The machine's end of the host's underlay veth, a port of the machine's br-phy."""
        return f"kphy-{self.name}"

    @property
    def root(self) -> Path:
        return self.hosts_dir / self.name

    @property
    def runfs(self) -> Path:
        """Mounted over /run inside the host's dockerd and daemon."""
        return self.root / "run"

    @property
    def ovs_run(self) -> Path:
        return self.runfs / "openvswitch"

    @property
    def ovs_db(self) -> Path:
        return self.root / "ovs" / "conf.db"

    @property
    def ovs_sock(self) -> Path:
        return self.ovs_run / "db.sock"

    @property
    def docker_sock(self) -> Path:
        return self.runfs / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_sock}"

    @property
    def plugin_sock(self) -> Path:
        return self.runfs / "docker" / "plugins" / "kuryr.sock"

    @property
    def docker_data(self) -> Path:
        return self.root / "docker"

    @property
    def plugin_specs(self) -> Path:
        """An empty directory mounted over /usr/lib/docker/plugins inside the host's dockerd,
        so it sees no plugin spec of the machine's."""
        return self.root / "plugin-specs"

    @property
    def cgroup_parent(self) -> str:
        return f"/kuryr-{self.name}"

    @property
    def config(self) -> Path:
        return self.root / "kuryr.conf"

    @property
    def state_dir(self) -> Path:
        return self.root / "kuryr-state"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pidfile(self, component: str) -> Path:
        # Not in runfs: a pidfile must be readable whatever is mounted where.
        return self.root / "pids" / f"{component}.pid"


def hosts_dir(stack_root: Path) -> Path:
    return stack_root / "hosts"


def names(count: int) -> list[str]:
    """The extra hosts of a stack of ``count`` hosts: the machine's own host is the first."""
    if not 1 <= count <= MAX_HOSTS:
        raise PlanError(f"--hosts must be between 1 and {MAX_HOSTS}, not {count}")
    return [f"h{index}" for index in range(2, count + 1)]


def index_of(name: str) -> int:
    match = _NAME.match(name)
    if match is None:
        raise PlanError(f"{name!r} is not a simulated host name (h2 … h{MAX_HOSTS})")
    return int(match.group(1))


def host(stack_root: Path, name: str) -> SimHost:
    return SimHost(index_of(name), hosts_dir(stack_root))


def planned(stack_root: Path, count: int) -> list[SimHost]:
    return [host(stack_root, name) for name in names(count)]


def present(stack_root: Path) -> list[SimHost]:
    """The hosts that have a directory, in index order (whether or not they run)."""
    directory = hosts_dir(stack_root)
    if not directory.is_dir():
        return []
    found = [entry.name for entry in directory.iterdir() if _NAME.match(entry.name)]
    return sorted((host(stack_root, name) for name in found), key=lambda h: h.index)


def encap_ip(has_hosts: bool) -> str:
    """The machine's chassis tunnel endpoint: on the underlay once other hosts exist."""
    return MAIN_UNDERLAY_IP if has_hosts else LOOPBACK_ENCAP_IP


def mesh(endpoints: dict[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Tunnel neighbours to seed: (on which host, peer underlay IP, peer br-phy MAC) for
    every ordered pair of distinct hosts; ``endpoints`` maps a host to its (IP, MAC)."""
    return [
        (on, ip, mac)
        for on in sorted(endpoints)
        for peer, (ip, mac) in sorted(endpoints.items())
        if peer != on
    ]
