"""The server's one hook: every request that reaches the domain marks Docker busy while it is
served; container requests move the start/stop clocks."""

from __future__ import annotations

from typing import Any

from kuryr import errors, metrics
from tests.unit.fake_drivers import plugin, post

NET = "0b707c5c251527c195db82fd7df44a27d6926b90bacf7ae3a232b450c6b8e9da"
EP = "5e1f0c0b7dd5d7b1d6f2a0c3e9a4b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1"
POOL = {"PoolID": "fake-10.0.0.0/24"}
ENDPOINT = {"NetworkID": NET, "EndpointID": EP}
JOIN = {**ENDPOINT, "SandboxKey": "/var/run/docker/netns/x"}
CONTAINER_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("/IpamDriver.RequestAddress", {**POOL, "Address": "10.0.0.7"}),
    ("/NetworkDriver.CreateEndpoint", {**ENDPOINT, "Interface": {"Address": "10.0.0.7/24"}}),
    ("/NetworkDriver.Join", JOIN),
    ("/NetworkDriver.Leave", ENDPOINT),
    ("/NetworkDriver.DeleteEndpoint", ENDPOINT),
    ("/IpamDriver.ReleaseAddress", {**POOL, "Address": "10.0.0.7"}),
]


def observed(histogram: str) -> float:
    return metrics.REGISTRY.get_sample_value(f"{histogram}_count") or 0.0


async def test_requests_that_reach_the_domain_mark_docker_busy_while_served() -> None:
    async with plugin() as (session, recorder):
        # Answered by the server alone, or refused before the domain: not counted.
        assert await post(session, "/NetworkDriver.GetCapabilities", {}) == 200
        assert await post(session, "/NetworkDriver.Join", {"NetworkID": NET}) == 400
        assert recorder.busy == 0
        # A network request is served as busy as a container's (a background network removal
        # must not slow a `docker network create` down).
        assert await post(session, "/NetworkDriver.CreateNetwork", {"NetworkID": NET}) == 200
        assert await post(session, "/NetworkDriver.EndpointOperInfo", ENDPOINT) == 200
        for path, body in CONTAINER_STEPS:
            assert await post(session, path, body) == 200
        assert recorder.busy == 2 + len(CONTAINER_STEPS)
        assert recorder.serving == 0


async def test_a_request_is_busy_until_it_is_answered() -> None:
    async with plugin() as (session, recorder):
        seen: list[int] = []
        recorder.during["create_network"] = lambda: seen.append(recorder.serving)
        assert await post(session, "/NetworkDriver.CreateNetwork", {"NetworkID": NET}) == 200
        recorder.failures["join"] = errors.BackendError("backend away")
        assert await post(session, "/NetworkDriver.Join", JOIN) != 200
    assert seen == [1]
    assert recorder.serving == 0, "a failed request is no longer busy either"


async def test_a_container_start_and_stop_are_timed_once_each() -> None:
    start, stop = (
        observed("kuryr_container_start_seconds"),
        observed("kuryr_container_stop_seconds"),
    )
    async with plugin() as (session, _):
        for path, body in CONTAINER_STEPS:
            assert await post(session, path, body) == 200
        # A second Join or DeleteEndpoint has no clock left to stop.
        assert await post(session, "/NetworkDriver.Join", JOIN) == 200
        assert await post(session, "/NetworkDriver.DeleteEndpoint", ENDPOINT) == 200
    assert observed("kuryr_container_start_seconds") == start + 1
    assert observed("kuryr_container_stop_seconds") == stop + 1


async def test_a_failed_join_leaves_the_start_clock_running() -> None:
    start = observed("kuryr_container_start_seconds")
    async with plugin() as (session, recorder):
        create = {**ENDPOINT, "Interface": {"Address": "10.0.0.8/24"}}
        assert await post(session, "/NetworkDriver.CreateEndpoint", create) == 200
        recorder.failures["join"] = errors.BackendError("backend away")
        assert await post(session, "/NetworkDriver.Join", JOIN) != 200
        assert observed("kuryr_container_start_seconds") == start
        del recorder.failures["join"]
        assert await post(session, "/NetworkDriver.Join", JOIN) == 200
    assert observed("kuryr_container_start_seconds") == start + 1
