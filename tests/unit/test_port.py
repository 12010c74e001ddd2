"""``kuryr port``'s pure parts: the daemon's answer from its local state, the text report, and
the bookkeeping bound each mode promises."""

from __future__ import annotations

import pytest

from kuryr.backends.state import State
from kuryr.config import BOOKKEEPING_IMMEDIATE, Config, NeutronConfig, PoolConfig
from kuryr.domain.ports import desired
from kuryr.domain.ports.port import Port
from kuryr.ops import admin_api, admin_reports, port, status

ENDPOINT = "e" * 64
NETWORK = "d" * 64
PORT = {
    "id": "01234567-89ab-cdef-0123-456789abcdef",
    "mac_address": "fa:16:3e:00:00:01",
    "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.10.0.5"}],
    "tags": [],
}


def state_with_endpoint() -> State:
    state = State.in_memory()
    state.save_endpoint(ENDPOINT, NETWORK, dict(PORT))
    return state


def test_pending_until_the_journal_entry_is_applied() -> None:
    state = state_with_endpoint()
    seq = state.journal_put(str(PORT["id"]), desired.assigned(Port.from_neutron(PORT), ENDPOINT))
    pending = admin_reports.describe(state, lambda _: None, [ENDPOINT])["endpoints"][ENDPOINT]
    assert pending["bookkeeping"] == admin_api.BOOKKEEPING_PENDING
    assert state.journal_done(str(PORT["id"]), seq)
    done = admin_reports.describe(state, lambda _: None, [ENDPOINT])["endpoints"][ENDPOINT]
    assert done["bookkeeping"] == admin_api.BOOKKEEPING_DONE


def test_answer_names_port_addresses_vif_and_status() -> None:
    answer = admin_reports.describe(
        state_with_endpoint(), {PORT["id"]: "ACTIVE"}.get, [ENDPOINT, "f" * 64]
    )
    assert answer["unknown"] == ["f" * 64]
    assert answer["endpoints"][ENDPOINT] == {
        "endpoint_id": ENDPOINT,
        "network_id": NETWORK,
        "port_id": PORT["id"],
        "ips": ["10.10.0.5"],
        "mac": "fa:16:3e:00:00:01",
        "host_ifname": "tap01234567-89",
        "container_ifname": "t_c01234567-89",
        "bookkeeping": admin_api.BOOKKEEPING_DONE,
        "status": "ACTIVE",
        "published": [],
    }


def test_status_the_daemon_does_not_know_is_unknown() -> None:
    answer = admin_reports.describe(state_with_endpoint(), lambda _: None, [ENDPOINT])
    assert answer["endpoints"][ENDPOINT]["status"] == admin_api.STATUS_UNKNOWN


def test_text_report_has_one_block_per_network() -> None:
    entry = admin_reports.describe(state_with_endpoint(), lambda _: None, [ENDPOINT])["endpoints"][
        ENDPOINT
    ]
    lines = port.render(
        {"container": {"id": "c" * 64, "name": "web"}, "ports": [{**entry, "network": "front"}]}
    )
    assert lines[0] == f"container web ({'c' * 12})"
    assert lines[1] == f"  network front ({'d' * 12})  endpoint {'e' * 12}"
    assert f"    port         {PORT['id']}" in lines
    assert "    ips          10.10.0.5" in lines
    assert "    bookkeeping  done (device_id, name and tags are in Neutron)" in lines
    assert "    status       unknown" in lines


def test_published_ports_show_where_they_are_reachable() -> None:
    state = state_with_endpoint()
    forwarding = {"address": "172.24.4.9", "protocol": "udp", "internal_port": 53}
    made = [{**forwarding, "external_port": 5353}]
    state.save_published(ENDPOINT, {"owner": "o", "floating_ips": ["f"], "forwardings": made})
    entry = admin_reports.describe(state, lambda _: None, [ENDPOINT])["endpoints"][ENDPOINT]
    assert entry["published"] == [{**forwarding, "external_port": 5353}]
    lines = port.render(
        {"container": {"id": "c" * 64, "name": "dns"}, "ports": [{**entry, "network": "front"}]}
    )
    assert "    published    172.24.4.9:5353/udp -> container port 53" in lines


@pytest.mark.parametrize(
    ("pool", "bound"),
    [
        (PoolConfig(bookkeeping_delay=1.0, background_longest=5.0), 1.0 + 5.0 + 2 * 10.0),
        (PoolConfig(bookkeeping_delay=0.0, background_longest=0.0), 2 * 10.0),
        (PoolConfig(bookkeeping=BOOKKEEPING_IMMEDIATE, bookkeeping_delay=1.0), 0.0),
    ],
)
def test_bookkeeping_bound(pool: PoolConfig, bound: float) -> None:
    config = Config(neutron=NeutronConfig(timeout=10.0), pool=pool)
    assert port.bookkeeping_bound(config) == bound


POOL_CONFIG = {"min": 2, "max": 0, "batch": 0, "initial": 4, "window": 10.0, "idle_after": 300.0}


def test_kuryr_status_lists_each_endpoint_s_published_ports() -> None:
    lines = status.render(
        {
            "networks": [
                {
                    "docker_id": NETWORK,
                    "neutron_id": "n",
                    "mtu": 1442,
                    "subnets": [],
                    "endpoints": [
                        {
                            "endpoint_id": ENDPOINT,
                            "port_id": PORT["id"],
                            "ips": ["10.10.0.5"],
                            "mac": "fa:16:3e:00:00:01",
                            "host_ifname": "tap01234567-89",
                            "container_ifname": "t_c01234567-89",
                            "published": [
                                {
                                    "address": "172.24.4.9",
                                    "external_port": 8080,
                                    "protocol": "tcp",
                                    "internal_port": 80,
                                }
                            ],
                        }
                    ],
                }
            ],
            "stray_endpoints": [],
            "pool_config": POOL_CONFIG,
            "pools": [],
            "journal_pending": 0,
            "network_removals_pending": [],
        }
    )
    assert "    published 172.24.4.9:8080/tcp -> container port 80" in lines
