"""A backend failure names its kind in the X-Kuryr-Cause header; a refusal of the request
itself (4xx) carries none. The fuzz tests rely on it to tell a Neutron outage (acceptable)
from Neutron refusing input Kuryr passed on (a validation gap)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiohttp
import pytest

from kuryr import deadline, errors
from kuryr.backends.neutron_api import NeutronError
from kuryr.plugin import server
from tests.unit.fake_drivers import fake_domain

NET = "0b707c5c251527c195db82fd7df44a27d6926b90bacf7ae3a232b450c6b8e9da"


@pytest.mark.parametrize(
    ("http_status", "cause"),
    [(400, "neutron-4xx"), (409, "neutron-4xx"), (500, "neutron-5xx"), (503, "neutron-5xx")],
)
def test_a_neutron_answer_gives_its_cause(http_status: int, cause: str) -> None:
    assert NeutronError("Neutron POST /subnets failed", http_status).cause == cause


def test_no_answer_needs_a_cause_or_is_a_client_failure() -> None:
    assert NeutronError("no endpoint configured").cause == "neutron-client"
    assert NeutronError("gave no answer", cause="neutron-timeout").cause == "neutron-timeout"


async def _post_create_network(failure: BaseException) -> tuple[int, str]:
    domain, recorder = fake_domain()
    recorder.failures["create_network"] = failure
    with tempfile.TemporaryDirectory(prefix="srv-cause-") as tmp:
        path = Path(tmp) / "kuryr.sock"
        connector = aiohttp.UnixConnector(path=str(path))
        async with server.serving(path, domain), aiohttp.ClientSession(connector=connector) as s:
            body = f'{{"NetworkID": "{NET}"}}'.encode()
            async with s.post("http://plugin/NetworkDriver.CreateNetwork", data=body) as resp:
                return resp.status, resp.headers.get(errors.CAUSE_HEADER, "")


@pytest.mark.parametrize(
    ("failure", "status", "cause"),
    [
        (NeutronError("refused", 400, "InvalidInput"), 502, "neutron-4xx"),
        (NeutronError("down", cause="neutron-unreachable"), 502, "neutron-unreachable"),
        (NeutronError("overloaded", 503), 502, "neutron-5xx"),
        (deadline.DeadlineExceeded("budget spent"), 502, "deadline"),
        (errors.BackendError("OVSDB transaction failed"), 502, "backend"),
        (errors.InvalidRequest("bad CIDR"), 400, ""),
        (errors.Conflict("address in use"), 409, ""),
    ],
)
async def test_the_answer_names_a_backend_failure_kind(
    failure: errors.KuryrError, status: int, cause: str
) -> None:
    assert await _post_create_network(failure) == (status, cause)
