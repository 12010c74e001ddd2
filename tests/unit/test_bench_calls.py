"""Parsing of the counting proxy's log and counting of Neutron calls per operation."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from bench import proxy
from bench.calls import Call, count_window, kind_of_path, last_arrival, parse_log, periodic
from bench.procs import parse_vmhwm

PORT_ID = "0b1f6f6e-4a57-4c1e-9a51-3f1f2d6e9c10"
NET_ID = "5d3c8f1a-77b0-4e7e-bb7e-0e8b2d4f7a21"


def _line(who: str, t0: float, method: str, path: str, status: int = 200) -> str:
    return json.dumps(
        {"who": who, "t0": t0, "t1": t0 + 0.01, "method": method, "path": path, "status": status}
    )


def _marked(who: str, t0: float, method: str, path: str, rid: str | None) -> str:
    """A line of the proxy since it logs the request id (null when none was sent)."""
    record = json.loads(_line(who, t0, method, path))
    return json.dumps({**record, "rid": rid})


def test_kind_elides_ids_tags_and_query() -> None:
    assert kind_of_path(f"/v2.0/ports/{PORT_ID}") == "/v2.0/ports/{id}"
    assert kind_of_path(f"/v2.0/ports/{PORT_ID}/tags/kuryr.net.uuid.lh:abc") == (
        "/v2.0/ports/{id}/tags/{tag}"
    )
    assert kind_of_path(f"/v2.0/ports?device_id={PORT_ID}&tags=x") == "/v2.0/ports"
    assert kind_of_path(f"/v2.0/networks/{NET_ID}/tags") == "/v2.0/networks/{id}/tags"
    assert kind_of_path("/") == "/"


def test_kind_elides_docker_style_hex_ids() -> None:
    docker_id = "a" * 32
    assert kind_of_path(f"/v2.0/subnets/{docker_id}") == "/v2.0/subnets/{id}"


def test_parse_log_reads_records_and_skips_blank_and_partial_lines() -> None:
    lines = [
        _line("kuryr", 10.0, "GET", "/v2.0/networks?name=x"),
        "",
        '{"who": "kuryr", "t0": 11.0, "t1"',
        _line("kuryrlib", 12.0, "POST", "/v2.0/ports", 201),
    ]
    calls = list(parse_log(lines))
    assert calls == [
        Call("kuryr", 10.0, 10.01, "GET", "/v2.0/networks?name=x", 200),
        Call("kuryrlib", 12.0, 12.01, "POST", "/v2.0/ports", 201),
    ]
    assert calls[0].kind == "GET /v2.0/networks"


def test_count_window_splits_sync_and_background_per_daemon() -> None:
    lines = [
        _line("kuryr", 99.0, "GET", "/v2.0/ports"),  # before the command: not counted
        _line("kuryr", 100.1, "POST", "/v2.0/ports", 201),
        _line("kuryr", 100.2, "PUT", f"/v2.0/ports/{PORT_ID}/tags/a"),
        _line("kuryrlib", 100.3, "GET", "/v2.0/ports"),  # another daemon
        _line("kuryr", 100.5, "PUT", f"/v2.0/ports/{PORT_ID}/tags/b"),  # at the return
        _line("kuryr", 101.0, "PUT", f"/v2.0/ports/{PORT_ID}", 409),  # after: async
        _line("kuryr", 103.5, "GET", "/v2.0/networks"),  # after quiet: not counted
    ]
    count = count_window(parse_log(lines), "kuryr", started=100.0, returned=100.5, quiet=103.0)
    assert (count.sync, count.background, count.total, count.errors) == (3, 1, 4, 1)
    assert count.sync_kinds == {"POST /v2.0/ports": 1, "PUT /v2.0/ports/{id}/tags/{tag}": 2}
    assert count.background_kinds == {"PUT /v2.0/ports/{id}": 1}
    assert count.as_dict()["async"] == 1


def test_count_window_with_no_calls_is_zero() -> None:
    count = count_window([], "kuryr", 0.0, 1.0, 2.0)
    assert count.as_dict() == {
        "sync": 0,
        "async": 0,
        "total": 0,
        "http_errors": 0,
        "sync_kinds": {},
        "async_kinds": {},
        "periodic": 0,
    }


def test_last_arrival_per_daemon() -> None:
    calls = list(parse_log([_line("kuryr", 5.0, "GET", "/"), _line("kuryrlib", 9.0, "GET", "/")]))
    assert last_arrival(calls, "kuryr") == 5.0
    assert last_arrival(calls, "nobody") is None


def test_parse_vmhwm_reads_peak_rss_in_kib() -> None:
    status = "Name:\tkuryr\nVmPeak:\t  300000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n"
    assert parse_vmhwm(status) == 51234
    assert parse_vmhwm("Name:\tkthreadd\n") is None


# The three reads of one reconciliation pass, as Kuryr's Neutron client sends them.
PASS = [
    "/v2.0/ports?binding%3Ahost_id=host-1&device_owner=compute%3Akuryr",
    "/v2.0/security-groups?fields=id&fields=name&fields=tags&fields=created_at&fields=updated_at",
    "/v2.0/floatingips?tags=kuryr.publish",
]


def test_the_periodic_passs_reads_are_told_from_an_operations_requests() -> None:
    assert all(periodic(Call("kuryr", 1.0, 1.1, "GET", path, 200)) for path in PASS)
    operations = [
        ("GET", f"/v2.0/ports?id={PORT_ID}&fields=id&fields=status"),  # a status read
        ("GET", "/v2.0/ports?device_owner=compute%3Akuryr"),  # not this host's alone
        ("GET", "/v2.0/security-groups?name=kuryr-expose-x&fields=id"),  # an expose group
        ("GET", "/v2.0/floatingips?port_id=x"),
        ("PUT", PASS[0]),
    ]
    for method, path in operations:
        assert not periodic(Call("kuryr", 1.0, 1.1, method, path, 200)), path


def test_count_window_counts_the_periodic_pass_apart_from_the_operation() -> None:
    lines = [_line("kuryr", 100.2 + i / 10, "GET", path) for i, path in enumerate(PASS)]
    lines.append(_line("kuryr", 101.0, "PUT", f"/v2.0/ports/{PORT_ID}"))
    count = count_window(parse_log(lines), "kuryr", started=100.0, returned=100.5, quiet=102.0)
    assert (count.sync, count.background, count.total, count.periodic) == (0, 1, 1, 3)


RID = "req-3f1c2b9e-8d7a-4c6b-9e5f-1a2b3c4d5e6f"
OTHER_RID = "req-9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
# The status watcher's read (kuryr.domain.ports.status), made in the background ~1 s after a
# Join: it may land while the next docker command runs.
STATUS_READ = f"/v2.0/ports?id={PORT_ID}&fields=id&fields=status"


def test_parse_log_reads_the_request_id_and_old_lines_have_none() -> None:
    lines = [
        _marked("kuryr", 10.0, "GET", "/v2.0/networks", RID),
        _marked("kuryr", 11.0, "GET", STATUS_READ, None),
        _line("kuryr", 12.0, "GET", "/v2.0/subnets"),  # logged before the proxy logged ids
    ]
    assert [c.rid for c in parse_log(lines)] == [RID, None, None]


def test_a_marked_daemons_background_read_inside_the_window_is_not_sync() -> None:
    lines = [
        _marked("kuryr", 100.2, "GET", STATUS_READ, None),  # while the command ran
        _marked("kuryr", 100.3, "POST", "/v2.0/ports", RID),
        _marked("kuryr", 101.0, "PUT", f"/v2.0/ports/{PORT_ID}", None),  # bookkeeping
    ]
    count = count_window(
        parse_log(lines), "kuryr", started=100.0, returned=100.5, quiet=103.0, marked=True
    )
    assert (count.sync, count.background) == (1, 2)
    assert count.sync_kinds == {"POST /v2.0/ports": 1}
    assert count.background_kinds == {"GET /v2.0/ports": 1, "PUT /v2.0/ports/{id}": 1}


def test_a_marked_daemons_call_with_an_id_is_sync_whenever_it_arrived_in_the_window() -> None:
    lines = [
        _marked("kuryr", 100.1, "GET", "/v2.0/subnets", RID),
        # A Docker request answered after the command returned (dockerd's own follow-up).
        _marked("kuryr", 102.0, "DELETE", f"/v2.0/ports/{PORT_ID}", OTHER_RID),
        _marked("kuryr", 104.0, "GET", "/v2.0/networks", RID),  # after quiet: not counted
    ]
    count = count_window(
        parse_log(lines), "kuryr", started=100.0, returned=100.5, quiet=103.0, marked=True
    )
    assert (count.sync, count.background, count.total) == (2, 0, 2)


def test_a_daemon_that_marks_nothing_keeps_the_time_rule() -> None:
    lines = [
        _line("kuryrlib", 100.2, "GET", "/v2.0/ports"),
        _marked("kuryrlib", 100.4, "GET", "/v2.0/subnets", None),
        _marked("kuryrlib", 101.0, "PUT", f"/v2.0/ports/{PORT_ID}", None),
    ]
    count = count_window(parse_log(lines), "kuryrlib", started=100.0, returned=100.5, quiet=103.0)
    assert (count.sync, count.background) == (2, 1)


def test_the_periodic_pass_stays_apart_for_a_marked_daemon() -> None:
    lines = [_marked("kuryr", 100.2 + i / 10, "GET", path, None) for i, path in enumerate(PASS)]
    count = count_window(
        parse_log(lines), "kuryr", started=100.0, returned=100.5, quiet=102.0, marked=True
    )
    assert (count.sync, count.background, count.periodic) == (0, 0, 3)


@asynccontextmanager
async def _served(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_the_proxy_logs_the_request_id_it_forwards() -> None:
    seen: list[str | None] = []

    async def neutron(request: web.Request) -> web.Response:
        seen.append(request.headers.get(proxy.REQUEST_ID_HEADER))
        return web.json_response({"networks": []})

    upstream = web.Application()
    upstream.router.add_get("/v2.0/networks", neutron)
    log = io.StringIO()
    async with _served(upstream) as neutron_url, aiohttp.ClientSession() as session:
        forwarding = web.Application()
        forwarding.router.add_route(
            "*", "/{tail:.*}", proxy.make_handler("kuryr", neutron_url, session, log)
        )
        async with _served(forwarding) as proxy_url:
            for headers in ({proxy.REQUEST_ID_HEADER: RID}, {}):
                async with session.get(f"{proxy_url}/v2.0/networks", headers=headers) as resp:
                    assert resp.status == 200
    assert seen == [RID, None]
    assert [c.rid for c in parse_log(log.getvalue().splitlines())] == [RID, None]
