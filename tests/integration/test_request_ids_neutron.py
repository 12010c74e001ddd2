"""The Docker request's id reaches the real neutron-server: a Neutron request that
kuryr.backends.neutron makes while a Docker request is served is logged by neutron-server under
that id as its global request id; one made outside any request carries none."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path

import pytest

from kuryr import request_ids
from tests.conftest import StackFacts
from tests.integration.domain_helpers import neutron_client

pytestmark = pytest.mark.stack

# oslo.log's context format opens with "[<global request id> <request id> ...]"; the global
# one is "None" when the request carried no X-OpenStack-Request-ID.
_IDS = re.compile(r"\[(\S+) (req-[0-9a-f-]{36}) ")


async def logged_ids(log: Path, marker: str) -> tuple[str, str]:
    """The (global, own) request ids of neutron-server's access line for ``marker``."""
    for _ in range(50):
        lines = [line for line in log.read_text(errors="replace").splitlines() if marker in line]
        if lines:
            found = _IDS.search(lines[-1])
            assert found, lines[-1]
            return found.group(1), found.group(2)
        await asyncio.sleep(0.1)
    raise AssertionError(f"neutron-server logged no request for {marker} in {log}")


async def test_a_request_id_is_neutrons_global_request_id(stack: StackFacts) -> None:
    neutron = neutron_client(stack.neutron_url)
    log = stack.layout.log("neutron-server")
    inside, outside = f"rid-{secrets.token_hex(6)}-in", f"rid-{secrets.token_hex(6)}-out"
    with request_ids.serving() as rid:
        assert await neutron.query("networks", {"name": inside}) == []
    assert await neutron.query("networks", {"name": outside}) == []

    global_id, own_id = await logged_ids(log, f"name={inside}")
    assert global_id == rid and own_id != rid
    global_id, _ = await logged_ids(log, f"name={outside}")
    assert global_id == "None"
