"""The mark DeleteEndpoint leaves on the address it released outlives the daemon: dockerd's
ReleaseAddress for that address, arriving after a restart and after the address went to a
new RequestAddress, must not take the new holder's port (a private ``kuryr serve``, SIGKILLed
between DeleteEndpoint and ReleaseAddress and restarted on the same state directory)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kuryr.backends.state import DB_NAME
from kuryr.stack.layout import NEUTRON_URL
from tests.conftest import StackFacts
from tests.integration.daemon_process import (
    create_network,
    free_cidr,
    kill,
    plugin,
    port_at,
    port_or_none,
    remove_leftovers,
    serve,
    short_budget_config,
)
from tests.integration.domain_helpers import cleanup, docker_id, neutron_client

pytestmark = pytest.mark.stack


def markers(root: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{root / 'state' / DB_NAME}?mode=ro", uri=True)
    try:
        return [
            (str(r[0]), str(r[1])) for r in db.execute("SELECT subnet_id, ip FROM release_markers")
        ]
    finally:
        db.close()


def test_late_release_after_a_restart_keeps_the_new_holder(
    stack: StackFacts, tmp_path: Path
) -> None:
    neutron, cidr = neutron_client(NEUTRON_URL), free_cidr()
    did, first, second = docker_id(), docker_id(), docker_id()
    conf = short_budget_config(tmp_path, stack.chassis_hostname, NEUTRON_URL)
    try:
        with serve(tmp_path, conf) as daemon:
            pool = create_network(tmp_path, did, cidr)
            address = plugin(
                tmp_path, "/IpamDriver.RequestAddress", {"PoolID": pool["PoolID"], "Options": {}}
            )["Address"]
            ip = address.split("/")[0]
            endpoint = {"NetworkID": did, "EndpointID": first}
            plugin(
                tmp_path,
                "/NetworkDriver.CreateEndpoint",
                {**endpoint, "Interface": {"Address": address}, "Options": {}},
            )
            subnet_id = port_at(ip)["fixed_ips"][0]["subnet_id"]
            plugin(tmp_path, "/NetworkDriver.DeleteEndpoint", endpoint)
            kill(daemon)
        assert port_or_none(ip) is None
        assert markers(tmp_path) == [(subnet_id, ip)]

        with serve(tmp_path, conf):
            plugin(
                tmp_path,
                "/IpamDriver.RequestAddress",
                {"PoolID": pool["PoolID"], "Address": ip, "Options": {}},
            )
            reserved = port_at(ip)
            # The first container's ReleaseAddress, late and after the restart.
            plugin(
                tmp_path, "/IpamDriver.ReleaseAddress", {"PoolID": pool["PoolID"], "Address": ip}
            )
            assert port_at(ip)["id"] == reserved["id"]
            assert markers(tmp_path) == []

            # The new holder's own release still frees the address.
            plugin(
                tmp_path,
                "/NetworkDriver.CreateEndpoint",
                {"NetworkID": did, "EndpointID": second, "Interface": {"Address": address}},
            )
            plugin(
                tmp_path, "/NetworkDriver.DeleteEndpoint", {"NetworkID": did, "EndpointID": second}
            )
            plugin(
                tmp_path, "/IpamDriver.ReleaseAddress", {"PoolID": pool["PoolID"], "Address": ip}
            )
            assert port_or_none(ip) is None
            assert markers(tmp_path) == []
            plugin(tmp_path, "/NetworkDriver.DeleteNetwork", {"NetworkID": did})
    finally:
        asyncio.run(cleanup(neutron, [first, second]))
        asyncio.run(remove_leftovers(neutron, did, cidr))
