"""Mutated requests against a live network and its pool: refused cleanly, nothing changed.

A private daemon (pools on) gets two live networks made through its own protocol, as dockerd
would make them: one with Kuryr IPAM (a pool, its gateway, one endpoint) and one with Docker
IPAM (one endpoint). dockerd's captured requests are retargeted at them (their network,
endpoint and pool ids, addresses of their subnets) and then mutated with values chosen to be
wrong in ways that look right: ids of the other live resources, out-of-range and in-use
addresses, IPv6 oddities, bad CIDRs, multicast MACs, options of the wrong type, huge bodies.

Every answer is 2xx, or a 4xx in the interface's envelope (``Err``; ``Error`` too for IPAM),
or a 502 for a Neutron outage only. What accepted requests made is undone the way Docker
would; after each batch the live networks are back to what they were (Neutron networks,
subnets, ports, subnetpools, security groups and each pool's free ports).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kuryr.backends import unixhttp
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron, network_tags, settle, wait_for
from tests.fuzz_requests import OUTAGE_CAUSES, post, post_reply
from tests.integration.private_daemon import PrivateDaemon, noauth_neutron, private_daemon
from tests.live_mutations import Live, LiveNetwork, LiveRequest, free_cidrs, live_requests

pytestmark = pytest.mark.stack

BATCH = 25
BATCHES = 40
POOL_SIZE = 2
# Reconciliation off: dockerd does not know the live networks, so it would reclaim them.
SECTIONS = f"[pool]\nmax = {POOL_SIZE}\nmin = {POOL_SIZE}\nbatch = 1\n[reconcile]\ninterval = 0\n"
# The stack is shared and its Neutron is sometimes slow: a slow answer is not what this tests.
PATIENT = "request_timeout = 30\n"
PATIENT_NEUTRON = "timeout = 25\n"
CLIENT_TIMEOUT = 60.0
GATEWAY = {"RequestAddressType": "com.docker.network.gateway"}
# Pool refills run in the background and wait for a pause in requests; on a loaded stack
# they can take a while.
SETTLE = 60.0
# CreateNetwork requests with a fresh id that pass validation (each makes a Neutron network).
FRESH_NETWORKS = 12
# Requests that only remove: their valid form aimed at a live resource is not sent.
REMOVING = (
    "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.DeleteEndpoint",
    "/IpamDriver.ReleasePool",
    "/IpamDriver.ReleaseAddress",
)


def call(daemon: PrivateDaemon, path: str, body: dict[str, Any]) -> Any:
    status, answer = post(daemon.socket, path, json.dumps(body).encode(), CLIENT_TIMEOUT)
    assert status == 200, f"{path} {body}: {status} {answer}"
    return answer


def make_network(
    daemon: PrivateDaemon, cidr: ipaddress.IPv4Network, kuryr_ipam: bool
) -> LiveNetwork:
    """A network and one endpoint, with the requests dockerd sends for them."""
    docker_id, endpoint = secrets.token_hex(32), secrets.token_hex(32)
    pool_id = address = ""
    gateway = f"{cidr.network_address + 1}/{cidr.prefixlen}"
    space = "no_address_space" if kuryr_ipam else "LocalDefault"
    if kuryr_ipam:
        pool = {"AddressSpace": space, "Pool": str(cidr), "SubPool": "", "Options": {}, "V6": False}
        pool_id = call(daemon, "/IpamDriver.RequestPool", pool)["PoolID"]
        request = {"PoolID": pool_id, "Address": "", "Options": GATEWAY}
        gateway = call(daemon, "/IpamDriver.RequestAddress", request)["Address"]
    ipv4 = [{"AddressSpace": space, "Pool": str(cidr), "Gateway": gateway, "AuxAddresses": {}}]
    options = {"com.docker.network.enable_ipv6": False, "com.docker.network.generic": {}}
    network = {"NetworkID": docker_id, "Options": options, "IPv4Data": ipv4, "IPv6Data": []}
    call(daemon, "/NetworkDriver.CreateNetwork", network)
    if kuryr_ipam:
        request = {"PoolID": pool_id, "Address": "", "Options": {}}
        address = call(daemon, "/IpamDriver.RequestAddress", request)["Address"]
    else:
        address = f"{cidr.network_address + 2}/{cidr.prefixlen}"
    interface = {"Address": address, "AddressIPv6": "", "MacAddress": ""}
    endpoint_body = {"NetworkID": docker_id, "EndpointID": endpoint, "Interface": interface}
    call(daemon, "/NetworkDriver.CreateEndpoint", {**endpoint_body, "Options": {}})
    return LiveNetwork(docker_id, cidr, pool_id, endpoint, address.partition("/")[0])


def remove_network(daemon: PrivateDaemon, net: LiveNetwork) -> None:
    ids = {"NetworkID": net.docker_id, "EndpointID": net.endpoint}
    post(daemon.socket, "/NetworkDriver.DeleteEndpoint", json.dumps(ids).encode(), CLIENT_TIMEOUT)
    if net.pool_id:
        release = {"PoolID": net.pool_id, "Address": net.address}
        post(
            daemon.socket,
            "/IpamDriver.ReleaseAddress",
            json.dumps(release).encode(),
            CLIENT_TIMEOUT,
        )
    post(daemon.socket, "/NetworkDriver.DeleteNetwork", json.dumps(ids).encode(), CLIENT_TIMEOUT)
    if net.pool_id:
        release = {"PoolID": net.pool_id, "Address": net.gateway}
        post(
            daemon.socket,
            "/IpamDriver.ReleaseAddress",
            json.dumps(release).encode(),
            CLIENT_TIMEOUT,
        )
        pool = json.dumps({"PoolID": net.pool_id}).encode()
        post(daemon.socket, "/IpamDriver.ReleasePool", pool, CLIENT_TIMEOUT)


def purge(neutron: Neutron, net: LiveNetwork) -> None:
    """Whatever the daemon left of a live network (a failed run), from Neutron."""
    for found in neutron.find("networks", tags=",".join(network_tags(net.docker_id))):
        for port in neutron.find("ports", network_id=found["id"]):
            if not str(port["device_owner"]).startswith("network:"):
                neutron.delete("ports", port["id"])
        neutron.delete("networks", found["id"])
    for pool in neutron.find("subnetpools", name=f"kuryrPool-{net.cidr}"):
        neutron.delete("subnetpools", pool["id"])


@pytest.fixture
def live(stack: StackFacts) -> Iterator[tuple[PrivateDaemon, Live]]:
    neutron = Neutron()
    kuryr_cidr, docker_cidr, *spare = free_cidrs(neutron, 2 + FRESH_NETWORKS)
    made: list[LiveNetwork] = []
    neutron_section = noauth_neutron() + PATIENT_NEUTRON
    with private_daemon(neutron_section, PATIENT, SECTIONS) as daemon:
        try:
            made.append(make_network(daemon, kuryr_cidr, kuryr_ipam=True))
            made.append(make_network(daemon, docker_cidr, kuryr_ipam=False))
            yield daemon, Live(made[0], made[1], tuple(spare))
        finally:
            for net in made:
                remove_network(daemon, net)
    for net in made:
        purge(neutron, net)


# --- the state that must not change --------------------------------------------------------


def snapshot(neutron: Neutron, daemon: PrivateDaemon, live: Live) -> dict[str, Any]:
    """What the live networks hold, in Neutron and in the daemon's pools."""
    picture: dict[str, Any] = {}
    pools = _pools(daemon)
    subnetpools = neutron.find("subnetpools", ip_version="4")
    # One listing for both live networks (Neutron spends ~0.4 s on any that finds networks):
    # every network with any of their tags, then for each the ones with all of its tags, the
    # same set as asking Neutron for tags=<all of them> network by network.
    every_tag = [tag for net in live.networks for tag in network_tags(net.docker_id)]
    tagged = neutron.find("networks", **{"tags-any": ",".join(every_tag)})
    for net in live.networks:
        wanted = set(network_tags(net.docker_id))
        found = [n for n in tagged if wanted <= set(n["tags"])]
        assert len(found) == 1, f"network {net.docker_id[:12]}: {found}"
        neutron_net = found[0]
        subnets = neutron.find("subnets", network_id=neutron_net["id"])
        ports = neutron.find("ports", network_id=neutron_net["id"])
        picture[net.docker_id[:12]] = {
            "network": {k: neutron_net[k] for k in ("name", "mtu", "admin_state_up", "shared")},
            "tags": sorted(neutron_net["tags"]),
            "subnets": sorted(
                (s["cidr"], s["gateway_ip"], json.dumps(s["allocation_pools"])) for s in subnets
            ),
            "ports": len(ports),
            "endpoint ports": sorted(
                (port["device_id"], json.dumps(port["fixed_ips"]), port["mac_address"])
                for port in ports
                if port["device_id"] in {n.endpoint for n in live.networks}
            ),
            "free pool ports": sorted(pools.get(s["id"], -1) for s in subnets),
            "subnetpools": sorted(
                pool["name"]
                for pool in subnetpools
                if any(ipaddress.IPv4Network(x).subnet_of(net.cidr) for x in pool["prefixes"])
            ),
            "expose groups": len(
                neutron.find("security-groups", name=f"kuryr_expose_{net.endpoint[:12]}")
            ),
        }
    return picture


def settled(neutron: Neutron, daemon: PrivateDaemon, live: Live) -> dict[str, Any]:
    """The snapshot once every pool is full again (its refill runs in the background)."""

    def full() -> dict[str, Any] | None:
        picture = snapshot(neutron, daemon, live)
        free = [n for net in picture.values() for n in net["free pool ports"]]
        return picture if free and all(n == POOL_SIZE for n in free) else None

    return wait_for(full, "the live networks' pools to be full", SETTLE)


def _pools(daemon: PrivateDaemon) -> dict[str, int]:
    status, raw = unixhttp.request(daemon.admin_socket, "GET", "/pools", timeout=10)
    assert status == 200, raw
    return {str(pool["subnet_id"]): int(pool["free"]) for pool in json.loads(raw)["pools"]}


# --- the run -------------------------------------------------------------------------------


@dataclass
class Sent:
    request: LiveRequest
    status: int
    answer: Any
    cause: str


@dataclass
class Run:
    daemon: PrivateDaemon
    live: Live
    sent: list[Sent] = field(default_factory=list)
    fresh_networks: int = 0

    def removes_fixture(self, request: LiveRequest) -> bool:
        """A removal Docker would send for a live resource (it would only undo the set-up),
        or a valid CreateNetwork of a live id with other pools: Docker never reuses an id,
        and a create of a known id completes what an interrupted one left undone."""
        body = request.body
        if request.path == "/NetworkDriver.CreateNetwork":
            return self._recreates(body)
        if request.path not in REMOVING or not isinstance(body, dict):
            return False
        for net in self.live.networks:
            if request.path == "/NetworkDriver.DeleteNetwork":
                hit = body.get("NetworkID") == net.docker_id
            elif request.path == "/NetworkDriver.DeleteEndpoint":
                hit = (body.get("NetworkID"), body.get("EndpointID")) == (
                    net.docker_id,
                    net.endpoint,
                )
            elif request.path == "/IpamDriver.ReleasePool":
                hit = bool(net.pool_id) and body.get("PoolID") == net.pool_id
            else:
                hit = bool(net.pool_id) and body.get("PoolID") == net.pool_id
                hit = hit and body.get("Address") in (net.gateway, net.address)
            if hit:
                return True
        return False

    def _admit(self, request: LiveRequest) -> bool:
        """False for a valid fresh-network request past the budget (it is not sent)."""
        if request.mutation != "fresh-network":
            return True
        try:
            p.CreateNetworkRequest.model_validate(request.body)
        except ValidationError:
            return True
        self.fresh_networks += 1
        return self.fresh_networks <= FRESH_NETWORKS

    def _recreates(self, body: Any) -> bool:
        try:
            parsed = p.CreateNetworkRequest.model_validate(body)
        except ValidationError:
            return False
        live = {n.docker_id: n for n in self.live.networks}.get(parsed.network_id)
        pools = [d.pool for d in (*parsed.ipv4_data, *parsed.ipv6_data)]
        return live is not None and pools != [str(live.cidr)]

    def send(self, request: LiveRequest) -> Sent | None:
        if self.removes_fixture(request) or not self._admit(request):
            return None
        status, answer, cause = post_reply(
            self.daemon.socket, request.path, request.encoded(), CLIENT_TIMEOUT
        )
        sent = Sent(request, status, answer, cause)
        self.sent.append(sent)
        return sent

    def undo(self, sent: Sent) -> None:
        """Remove what an accepted request made, as Docker would; that must succeed."""
        path, body = sent.request.path, sent.request.body
        live_ids = {n.docker_id for n in self.live.networks} | {
            n.endpoint for n in self.live.networks
        }
        undo: tuple[str, dict[str, Any]] | None = None
        if path == "/NetworkDriver.CreateNetwork" and body["NetworkID"] not in live_ids:
            undo = ("/NetworkDriver.DeleteNetwork", {"NetworkID": body["NetworkID"]})
        elif path == "/NetworkDriver.CreateEndpoint" and body["EndpointID"] not in live_ids:
            undo = ("/NetworkDriver.DeleteEndpoint", _ids(body))
        elif path == "/NetworkDriver.Join":
            undo = ("/NetworkDriver.Leave", _ids(body))
        elif path == "/NetworkDriver.ProgramExternalConnectivity":
            undo = ("/NetworkDriver.RevokeExternalConnectivity", _ids(body))
        elif path == "/IpamDriver.RequestPool":
            if sent.answer["PoolID"] not in {n.pool_id for n in self.live.networks}:
                undo = ("/IpamDriver.ReleasePool", {"PoolID": sent.answer["PoolID"]})
        elif path == "/IpamDriver.RequestAddress":
            address = sent.answer["Address"].partition("/")[0]
            live_addresses = {a for n in self.live.networks for a in (n.gateway, n.address)}
            if address not in live_addresses:
                undo = (
                    "/IpamDriver.ReleaseAddress",
                    {"PoolID": body["PoolID"], "Address": address},
                )
        if undo is not None:
            status, answer = post(
                self.daemon.socket, undo[0], json.dumps(undo[1]).encode(), CLIENT_TIMEOUT
            )
            assert status == 200, f"{undo} after {sent.request}: {status} {answer}"


def _ids(body: dict[str, Any]) -> dict[str, Any]:
    return {"NetworkID": body["NetworkID"], "EndpointID": body["EndpointID"]}


def problems(sent: Sent) -> list[str]:
    """What is wrong with one answer: a 5xx other than an outage, or a bad envelope."""
    found = []
    if sent.status >= 500 and not (sent.status == 502 and sent.cause in OUTAGE_CAUSES):
        found.append(f"{sent.status} ({sent.cause or 'no cause'})")
    if sent.status != 200:
        answer = sent.answer if isinstance(sent.answer, dict) else {}
        message = answer.get("Err")
        if not (isinstance(message, str) and message):
            found.append("no Err message")
        if sent.request.path.startswith("/IpamDriver.") and answer.get("Error") != message:
            found.append("IPAM error without the same Error")
    return found


@pytest.fixture
def run_state(live: tuple[PrivateDaemon, Live]) -> Run:
    return Run(*live)


def test_mutated_requests_against_a_live_network_change_nothing(run_state: Run) -> None:
    neutron = Neutron()
    daemon, live = run_state.daemon, run_state.live
    baseline = settled(neutron, daemon, live)
    batches = 0
    bad: list[tuple[LiveRequest, int, Any, list[str]]] = []

    @settings(
        max_examples=BATCHES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(live_requests(live), min_size=BATCH, max_size=BATCH))
    def batch(drawn: list[LiveRequest]) -> None:
        nonlocal batches
        batches += 1
        answered = [s for s in (run_state.send(r) for r in drawn) if s is not None]
        bad.extend((s.request, s.status, s.answer, f) for s in answered if (f := problems(s)))
        for sent in reversed(answered):
            if sent.status == 200:
                run_state.undo(sent)
        left = [
            s.request
            for s in answered
            if s.status != 200
            and s.request.mutation == "fresh-network"
            and neutron.find("networks", tags=",".join(network_tags(s.request.body["NetworkID"])))
        ]
        assert left == [], f"refused CreateNetwork requests left Neutron networks: {left}"
        after = settle(lambda: snapshot(neutron, daemon, live), baseline, timeout=SETTLE)
        changed = [
            f"{net} {key}: {before!r} -> {after[net][key]!r}"
            for net, fields in baseline.items()
            for key, before in fields.items()
            if after[net][key] != before
        ]
        listing = "\n".join(f"{s.status} {s.request}" for s in answered)
        warnings = [line for line in daemon.log_text().splitlines() if " WARNING " in line]
        report = [*changed, "after:", listing, "daemon warnings:", *warnings[-20:]]
        assert changed == [], "\n".join(report)

    batch()
    # The daemon's own account goes with it: its log is gone with its directory afterwards.
    noted = [
        line for line in daemon.log_text().splitlines() if " WARNING " in line or " ERROR " in line
    ]
    assert bad == [], "\n".join([*(str(b) for b in bad[:20]), "daemon log:", *noted[-40:]])
    statuses = Counter((s.request.mutation, s.status) for s in run_state.sent)
    assert batches == BATCHES, batches
    assert len(run_state.sent) >= BATCH * BATCHES // 2, statuses
    assert daemon.process.poll() is None, "the daemon died\n" + daemon.log_text()[-3000:]
    assert "Traceback" not in daemon.log_text()
