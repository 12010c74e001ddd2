"""A crash after Docker has its answer and before the bookkeeping reached Neutron is finished
by the next daemon: a private ``kuryr serve`` (own socket, own state directory) is SIGKILLed
right after CreateEndpoint, with its journal held back by a long ``bookkeeping_delay``, and
restarted on the same state directory."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.unixhttp import json_call
from kuryr.stack.layout import NEUTRON_URL
from tests.conftest import StackFacts
from tests.integration.daemon_process import plugin, port_at, port_or_none, serve, wait_for
from tests.integration.domain_helpers import cleanup, docker_id, neutron_client

pytestmark = pytest.mark.stack


def write_config(root: Path, host: str, delay: float) -> Path:
    conf = root / "kuryr.conf"
    conf.write_text(
        f"[DEFAULT]\nsocket = {root / 'kuryr.sock'}\nstate_dir = {root / 'state'}\n"
        f"[neutron]\nauth_type = none\nendpoint = {NEUTRON_URL}\ntimeout = 60\n"
        f"[binding]\nhost = {host}\n"
        f"[pool]\nmin = 2\nmax = 3\nbatch = 3\nbookkeeping_delay = {delay}\n"
    )
    return conf


def pools(root: Path) -> list[dict[str, Any]]:
    return list(json_call(root / "state" / "admin.sock", "GET", "/pools")["pools"])


def bookkept(port: dict[str, Any], endpoint_id: str) -> dict[str, Any] | None:
    """The port once device_id and the endpoint's tags (two calls) are both written."""
    done = port["device_id"] == endpoint_id and set(naming.id_tags(endpoint_id)) <= set(
        port["tags"]
    )
    return port if done else None


def cleaned_or_gone(address: str, endpoint_id: str) -> bool:
    port = port_or_none(address)
    return port is None or (
        port["device_id"] == "" and not set(naming.id_tags(endpoint_id)) & set(port["tags"])
    )


def test_bookkeeping_lost_to_sigkill_is_finished_at_restart(
    stack: StackFacts, tmp_path: Path
) -> None:
    did, eid = docker_id(), docker_id()
    held_back = write_config(tmp_path, stack.chassis_hostname, delay=3600)
    try:
        with serve(tmp_path, held_back) as daemon:
            pool = plugin(tmp_path, "/IpamDriver.RequestPool", {"Pool": "10.97.14.0/24"})
            gateway = plugin(
                tmp_path,
                "/IpamDriver.RequestAddress",
                {
                    "PoolID": pool["PoolID"],
                    "Options": {"RequestAddressType": "com.docker.network.gateway"},
                },
            )
            plugin(
                tmp_path,
                "/NetworkDriver.CreateNetwork",
                {
                    "NetworkID": did,
                    "IPv4Data": [
                        {
                            "AddressSpace": "no_address_space",
                            "Pool": pool["Pool"],
                            "Gateway": gateway["Address"],
                        }
                    ],
                    "IPv6Data": [],
                    "Options": {},
                },
            )
            address = plugin(
                tmp_path, "/IpamDriver.RequestAddress", {"PoolID": pool["PoolID"], "Options": {}}
            )["Address"]
            ip = address.split("/")[0]
            plugin(
                tmp_path,
                "/NetworkDriver.CreateEndpoint",
                {
                    "NetworkID": did,
                    "EndpointID": eid,
                    "Interface": {"Address": address},
                    "Options": {},
                },
            )
            wait_for(lambda: any(p["free"] >= 2 for p in pools(tmp_path)), "the pool to fill")
            before = pools(tmp_path)
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait()

        # Docker had its answer; Neutron has not heard of the endpoint yet.
        assert port_at(ip)["device_id"] == ""

        with serve(tmp_path, write_config(tmp_path, stack.chassis_hostname, delay=0)):
            port = wait_for(
                lambda: bookkept(port_at(ip), eid), "the journaled bookkeeping to be applied"
            )
            assert port["name"] == naming.port_name(eid)
            assert set(naming.id_tags(eid)) <= set(port["tags"])
            after = pools(tmp_path)
            assert [p["subnet_id"] for p in after] == [p["subnet_id"] for p in before]
            assert set(before[0]["free_addresses"]) <= set(after[0]["free_addresses"]) | {ip}

            plugin(tmp_path, "/NetworkDriver.DeleteEndpoint", {"NetworkID": did, "EndpointID": eid})
            plugin(
                tmp_path, "/IpamDriver.ReleaseAddress", {"PoolID": pool["PoolID"], "Address": ip}
            )
            wait_for(lambda: cleaned_or_gone(ip, eid), "the port to be cleaned or deleted")
            plugin(tmp_path, "/NetworkDriver.DeleteNetwork", {"NetworkID": did})
    finally:
        asyncio.run(cleanup(neutron_client(NEUTRON_URL), [did, eid]))
