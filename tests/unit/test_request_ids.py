"""kuryr.request_ids: each Docker request the server routes gets an id of its own, which the
Neutron requests it waits for carry and background work does not."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from kuryr import errors, request_ids
from kuryr.domain.ports.journal import background
from kuryr.domain.quiet import giving_way
from tests.unit.fake_drivers import plugin, post

NET = "0b707c5c251527c195db82fd7df44a27d6926b90bacf7ae3a232b450c6b8e9da"
EP = "5e1f0c0b7dd5d7b1d6f2a0c3e9a4b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1"
ENDPOINT = {"NetworkID": NET, "EndpointID": EP}
# What neutron-server's request_id middleware (oslo.middleware) takes as a global request id.
OSLO_ID = re.compile(r"^req-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")


def test_an_id_is_set_only_while_a_request_is_served() -> None:
    assert request_ids.current() is None
    with request_ids.serving() as first:
        assert request_ids.current() == first
    with request_ids.serving() as second:
        assert request_ids.current() == second
    assert request_ids.current() is None
    assert OSLO_ID.match(first) and OSLO_ID.match(second) and first != second


async def test_each_routed_request_is_served_under_a_fresh_id() -> None:
    seen: list[str | None] = []
    async with plugin() as (session, recorder):
        recorder.during["leave"] = lambda: seen.append(request_ids.current())
        assert await post(session, "/NetworkDriver.Leave", ENDPOINT) == 200
        assert await post(session, "/NetworkDriver.Leave", ENDPOINT) == 200
    assert len(seen) == 2 and all(rid and OSLO_ID.match(rid) for rid in seen)
    assert seen[0] != seen[1]
    assert request_ids.current() is None


async def test_background_work_started_by_a_request_carries_no_id() -> None:
    """A pool refill or a journal apply a request starts is not that request's: its Neutron
    requests must not be counted (nor looked for in Neutron's log) as the request's own."""
    started: list[asyncio.Task[None]] = []
    inside: list[str | None] = []

    async def work() -> None:
        inside.append(request_ids.current())

    async with plugin() as (session, recorder):
        recorder.during["leave"] = lambda: started.append(background(work(), "rid-bg"))
        assert await post(session, "/NetworkDriver.Leave", ENDPOINT) == 200
        await asyncio.gather(*started)
    assert inside == [None]


async def test_work_a_request_waits_for_in_a_task_of_its_own_carries_its_id() -> None:
    """A journal apply a request flushes and waits for (``[pool] bookkeeping = immediate``)."""
    inside: list[str | None] = []

    async def work() -> None:
        inside.append(request_ids.current())

    with request_ids.serving() as rid:
        await background(work(), "rid-flush", giving_way())
    await background(work(), "rid-flush", giving_way())
    assert inside == [rid, None]


async def test_a_refusal_is_logged_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str | None] = []
    async with plugin() as (session, recorder):
        recorder.during["leave"] = lambda: seen.append(request_ids.current())
        recorder.failures["leave"] = errors.BackendError("rid-test: Neutron went away")
        with caplog.at_level(logging.INFO, logger="kuryr.plugin.server"):
            assert await post(session, "/NetworkDriver.Leave", ENDPOINT) == 502
    [rid] = seen
    assert f"Leave refused (502) [{rid}]: rid-test: Neutron went away" in caplog.text
