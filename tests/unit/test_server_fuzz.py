"""Fuzz the plugin surface with mutated dockerd requests: no 5xx; a rejection changes nothing."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings

from kuryr.plugin import server
from tests.fuzz_requests import FuzzRequest, captured, post, requests
from tests.unit.fake_drivers import Recorder, fake_domain


@dataclass
class Served:
    path: Path
    recorder: Recorder


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """The server on its own loop in a thread, so hypothesis can drive it synchronously."""
    domain, recorder = fake_domain()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    with tempfile.TemporaryDirectory(prefix="srv-fuzz-") as tmp:
        path = Path(tmp) / "kuryr.sock"

        async def serve() -> None:
            async with server.serving(path, domain):
                ready.set()
                await stop.wait()

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        assert ready.wait(10), "server did not start"
        try:
            yield Served(path, recorder)
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)
            loop.close()


def test_every_captured_request_is_served(served: Served) -> None:
    for seed in captured():
        served.recorder.calls.clear()
        status, answer = post(served.path, seed.path, json.dumps(seed.body).encode())
        assert status == 200, (seed, answer)
        assert len(served.recorder.calls) == (1 if server.ROUTES[seed.path].calls_domain else 0)


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_fuzzed_requests_never_5xx_and_rejections_reach_no_domain(
    served: Served, request: FuzzRequest
) -> None:
    served.recorder.calls.clear()
    status, answer = post(served.path, request.path, request.body)
    event(f"{request.mutation} -> {status}")
    assert status < 500, answer
    route = server.ROUTES.get(request.path)
    if status >= 400:
        assert served.recorder.calls == []
        assert isinstance(answer["Err"], str) and answer["Err"]
        if request.path.startswith("/IpamDriver."):
            assert answer["Error"] == answer["Err"]
    else:
        assert route is not None
        assert len(served.recorder.calls) == (1 if route.calls_domain else 0)
