"""The plan of simulated hosts: names, namespaces, underlay addresses, links and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuryr.stack import hostplan
from kuryr.stack.hostplan import PlanError, SimHost


def test_a_stack_of_three_hosts_adds_h2_and_h3() -> None:
    assert hostplan.names(3) == ["h2", "h3"]


def test_a_stack_of_one_host_adds_none() -> None:
    assert hostplan.names(1) == []


@pytest.mark.parametrize("count", [0, -1, hostplan.MAX_HOSTS + 1])
def test_host_counts_outside_the_plan_are_refused(count: int) -> None:
    with pytest.raises(PlanError, match=f"between 1 and {hostplan.MAX_HOSTS}, not {count}"):
        hostplan.names(count)


@pytest.mark.parametrize("name", ["h1", "h10", "h02", "vm", "h", "H2", " h2"])
def test_names_outside_the_plan_are_refused(name: str) -> None:
    with pytest.raises(PlanError):
        hostplan.index_of(name)


def test_each_host_has_its_own_names_and_underlay_address(tmp_path: Path) -> None:
    h2, h3 = hostplan.planned(tmp_path, 3)
    assert (h2.name, h2.netns, h2.underlay_ip, h2.underlay_cidr) == (
        "h2",
        "kuryr-h2",
        "192.168.250.2",
        "192.168.250.2/24",
    )
    assert h3.underlay_ip == "192.168.250.3"
    assert hostplan.MAIN_UNDERLAY_IP == "192.168.250.1"
    assert len({h.root_link for h in (h2, h3)}) == 2


def test_every_planned_link_name_fits_the_kernel_limit(tmp_path: Path) -> None:
    for host in hostplan.planned(tmp_path, hostplan.MAX_HOSTS):
        assert len(host.root_link) <= 15
        assert host.netns_path == Path("/run/netns") / host.netns


def test_a_hosts_files_live_below_its_directory(tmp_path: Path) -> None:
    host = hostplan.host(tmp_path, "h4")
    assert host.root == tmp_path / "hosts" / "h4"
    assert host.docker_host == f"unix://{tmp_path}/hosts/h4/run/docker.sock"
    assert host.plugin_sock == tmp_path / "hosts/h4/run/docker/plugins/kuryr.sock"
    assert host.ovs_sock == tmp_path / "hosts/h4/run/openvswitch/db.sock"
    # Pidfiles stay outside the directory mounted over /run inside the host.
    assert host.runfs not in host.pidfile("dockerd").parents
    # unix socket paths are limited to 107 bytes
    assert len(str(hostplan.host(Path("/var/lib/kuryr-stack"), "h9").ovs_run)) < 80


def test_present_hosts_are_the_host_directories_in_index_order(tmp_path: Path) -> None:
    assert hostplan.present(tmp_path) == []
    for name in ("h3", "h2", "h9", "notes", "h1", "h10"):
        (tmp_path / "hosts" / name).mkdir(parents=True)
    assert [h.name for h in hostplan.present(tmp_path)] == ["h2", "h3", "h9"]


def test_the_machines_chassis_tunnels_from_the_underlay_only_beside_other_hosts() -> None:
    assert hostplan.encap_ip(False) == "127.0.0.1"
    assert hostplan.encap_ip(True) == hostplan.MAIN_UNDERLAY_IP


def test_tunnel_neighbours_are_seeded_between_every_ordered_pair() -> None:
    endpoints = {
        "": ("192.168.250.1", "aa"),
        "h2": ("192.168.250.2", "bb"),
        "h3": ("192.168.250.3", "cc"),
    }
    seeds = hostplan.mesh(endpoints)
    assert len(seeds) == 6
    assert ("h2", "192.168.250.1", "aa") in seeds and ("", "192.168.250.3", "cc") in seeds
    assert all(endpoints[on][0] != ip for on, ip, _ in seeds)


def test_one_host_needs_no_neighbours() -> None:
    assert hostplan.mesh({"": ("192.168.250.1", "aa")}) == []


def test_hosts_compare_by_index_and_directory(tmp_path: Path) -> None:
    assert hostplan.host(tmp_path, "h2") == SimHost(2, tmp_path / "hosts")
