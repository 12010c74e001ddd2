"""``docker run -p`` through Neutron: the ports Docker sends, read and checked (pure), and on the
in-memory Neutron the forwardings from the network's floating IP, its reuse and release, the
conflict and bad input refused with nothing made, revoke at stop or at DeleteEndpoint, a
failure midway undone, and a restart that still finds what an endpoint published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import NeutronError, Resource
from kuryr.domain import published
from kuryr.domain.published import EPHEMERAL, Wanted, choose, wanted
from kuryr.errors import Conflict, InvalidRequest
from kuryr.plugin import protocol as p
from tests.fakes.daemon import daemon
from tests.fakes.way_out import (
    ROUTER,
    SCTP,
    TCP,
    UDP,
    attached,
    entry,
    fips,
    forwarded,
    opened,
    options,
    world,
)

# --- what Docker sends ----------------------------------------------------------------------


def test_the_forms_of_p_as_dockerd_sends_them() -> None:
    # -p 8080:80, -p 8080:80/udp, -p 8000-8002:70-72, -p 9000-9009:90, -p 91
    asked = wanted(
        options(
            entry(80, 8080),
            entry(80, 8080, proto=UDP),
            entry(70, 8000),
            entry(71, 8001),
            entry(72, 8002),
            entry(90, 9000, 9009),
            entry(91, 0, 0),
        )
    )
    assert asked == sorted(
        [
            Wanted("tcp", 80, 8080, 8080),
            Wanted("udp", 80, 8080, 8080),
            Wanted("tcp", 70, 8000, 8000),
            Wanted("tcp", 71, 8001, 8001),
            Wanted("tcp", 72, 8002, 8002),
            Wanted("tcp", 90, 9000, 9009),
            Wanted("tcp", 91, 0, 0),
        ]
    )


def test_wanted_reads_the_captured_payloads_form() -> None:
    captured = [
        {"HostIP": "", "HostPort": 8080, "HostPortEnd": 8080, "IP": "", "Port": 80, "Proto": 6}
    ]
    assert wanted({p.OPT_PORTMAP: captured}) == [Wanted("tcp", 80, 8080, 8080)]
    assert wanted({p.OPT_PORTMAP: []}) == []
    assert wanted({}) == []
    # Newer dockerd sends an IPv4 and an IPv6 entry for one -p: the same port to publish.
    twice = options(entry(80, 8080, ip="0.0.0.0"), entry(80, 8080, ip="::"))
    assert wanted(twice) == [Wanted("tcp", 80, 8080, 8080)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (entry(0, 8080), "container port 0"),
        (entry(70000, 8080), "container port 70000"),
        (entry(80, 70000), "host port 70000"),
        (entry(80, -1), "HostPort -1"),
        (entry(80, 8080, proto=SCTP), "sctp cannot be published"),
        (entry(80, 8080, proto=0), "protocol 0 cannot be published"),
        (entry(80, 8080, ip="127.0.0.1"), "127.0.0.1"),
        ({"Proto": TCP, "Port": True, "HostPort": 1}, "Port True"),
    ],
)
def test_bad_input_is_refused(bad: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        wanted(options(bad))


def test_a_port_published_twice_in_one_run_is_refused() -> None:
    with pytest.raises(Conflict, match="8080/tcp is published twice"):
        wanted(options(entry(80, 8080), entry(81, 8080)))
    with pytest.raises(InvalidRequest, match="one external port only"):
        wanted(options(entry(80, 8080), entry(80, 8081)))


def test_choose_exact_ports_first_then_ranges_then_docker_s_ephemeral_range() -> None:
    asked = [Wanted("tcp", 90, 8000, 8009), Wanted("tcp", 80, 8000, 8000), Wanted("tcp", 91, 0, 0)]
    taken = [("tcp", 8001), ("udp", 8002), ("tcp", EPHEMERAL[0])]
    assert choose(asked, taken, "172.24.4.9") == [8002, 8000, EPHEMERAL[0] + 1]


def test_choose_refuses_a_taken_port_and_a_full_range() -> None:
    with pytest.raises(Conflict, match=r"172.24.4.9:8080/tcp is already published"):
        choose([Wanted("tcp", 80, 8080, 8080)], [("tcp", 8080)], "172.24.4.9")
    with pytest.raises(Conflict, match="every port of 8000-8001/udp"):
        choose([Wanted("udp", 80, 8000, 8001)], [("udp", 8000), ("udp", 8001)], "172.24.4.9")


# --- on the in-memory Neutron -----------------------------------------------------------------


async def test_p_forwards_from_the_network_s_floating_ip_reused_and_released(
    tmp_path: Path,
) -> None:
    neutron, public = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        web, dns = await d.run(net), await d.run(net)

        await d.publish(web, [entry(80, 8080), entry(53, 5353, proto=UDP)])
        await d.publish(dns, [entry(80, 8081)])

        [fip] = fips(d)
        address = fip["floating_ip_address"]
        assert fip["floating_network_id"] == public["id"]
        assert naming.publish_tags(naming.TAG_PUBLISH_NET, net.neutron_id) == sorted(fip["tags"])
        assert forwarded(d) == {
            (address, 8080, "tcp", 80, web.address),
            (address, 5353, "udp", 53, web.address),
            (address, 8081, "tcp", 80, dns.address),
        }
        assert opened(d, web) == {("tcp", 80), ("udp", 53)}
        assert opened(d, dns) == {("tcp", 80)}

        await d.unpublish(web)
        assert forwarded(d) == {(address, 8081, "tcp", 80, dns.address)}
        assert opened(d, web) == set()

        await d.stop(web)
        await d.unpublish(dns)
        assert forwarded(d) == set() and fips(d) == []


async def test_the_same_external_port_twice_is_a_conflict_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        first, second = await d.run(net), await d.run(net)
        await d.publish(first, [entry(80, 8080)])
        before = forwarded(d)
        groups = len(d.neutron.rows("security-groups"))

        with pytest.raises(Conflict, match=r":8080/tcp is already published"):
            await d.publish(second, [entry(81, 8081), entry(80, 8080)])

        assert forwarded(d) == before
        assert len(d.neutron.rows("security-groups")) == groups
        assert d.network.published._state.published(second.endpoint_id) is None  # type: ignore[attr-defined]


async def test_bad_input_changes_nothing(tmp_path: Path) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        c = await d.run(net)
        calls = sum(d.neutron.calls.values())

        with pytest.raises(InvalidRequest, match="container port 70000"):
            await d.publish(c, [entry(70000, 8080)], exposed=False)
        with pytest.raises(InvalidRequest, match="protocol 0"):
            await d.publish(c, [entry(80, 8080, proto=0)], exposed=False)

        assert sum(d.neutron.calls.values()) == calls
        assert fips(d) == []


async def test_a_network_without_a_way_out_and_an_internal_one_publish_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        closed = await d.kuryr_network()
        inside = await d.kuryr_network(options={"neutron.router": ROUTER}, internal=True)
        c, i = await d.run(closed), await d.run(inside)

        await d.publish(c, [entry(80, 8080)])
        await d.publish(i, [entry(80, 8080)])

        assert fips(d) == [] and forwarded(d) == set()
        # The ports are opened as --expose opens them, and the log says how to publish.
        assert opened(d, c) == {("tcp", 80)}
        assert "neutron.router=NAME" in caplog.text


async def test_floating_ip_per_container(tmp_path: Path) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron, floating_ip_per="container") as d:
        net = await attached(d)
        a, b = await d.run(net), await d.run(net)

        await d.publish(a, [entry(80, 8080)])
        await d.publish(b, [entry(80, 8080)])

        owners = {naming.TAG_PUBLISH_ENDPOINT + ":" + c.endpoint_id for c in (a, b)}
        assert {t for f in fips(d) for t in f["tags"]} - {naming.TAG_PUBLISH} == owners
        await d.unpublish(a)
        assert len(fips(d)) == 1


async def test_delete_endpoint_without_revoke_unpublishes(tmp_path: Path) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        c = await d.run(net)
        await d.publish(c, [entry(80, 0)])
        [(_, external, *_)] = forwarded(d)
        assert external == EPHEMERAL[0]

        await d.stop(c)

        assert forwarded(d) == set() and fips(d) == []


async def test_a_failure_midway_undoes_what_was_made(tmp_path: Path) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        c = await d.run(net)
        real = neutron.add_port_forwarding
        made: list[str] = []

        async def second_fails(fip_id: str, attrs: Any) -> Resource:
            if made:
                raise NeutronError("Neutron POST port_forwardings failed: 500", 500)
            answer = await real(fip_id, attrs)
            made.append(answer["id"])
            return answer

        neutron.add_port_forwarding = second_fails  # type: ignore[method-assign,assignment]
        with pytest.raises(NeutronError):
            await d.publish(c, [entry(80, 8080), entry(81, 8081)])
        assert made and forwarded(d) == set() and fips(d) == []

        neutron.add_port_forwarding = real  # type: ignore[method-assign]
        neutron.faults.fail("POST", "security-groups", status=500)
        with pytest.raises(NeutronError, match="security-groups"):
            await d.publish(c, [entry(80, 8080)])
        assert forwarded(d) == set() and fips(d) == []


async def test_after_a_restart_revoke_still_finds_what_was_published(tmp_path: Path) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        c = await d.run(net)
        await d.publish(c, [entry(80, 8080)])
    async with daemon(tmp_path, neutron=neutron) as again:
        assert len(forwarded(again)) == 1
        await again.unpublish(c)
        assert forwarded(again) == set() and fips(again) == []


def test_reachable_rows_read_as_address_port_protocol() -> None:
    record = {
        "forwardings": [
            {"address": "172.24.4.9", "external_port": 8080, "protocol": "tcp", "internal_port": 80}
        ]
    }
    [row] = published.reachable(record)
    assert published.reachable_text(row) == "172.24.4.9:8080/tcp -> container port 80"
