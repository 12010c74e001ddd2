"""10,000 generated requests at a real daemon's socket: no crash, no 5xx but Neutron outages
(a 502 whose X-Kuryr-Cause is a connection failure, timeout or Neutron 5xx; Neutron refusing
input Kuryr passed on is a validation gap), and no Neutron or OVS resource made by a request
the daemon refused.

The requests are tests/fuzz_requests.py's mutations of dockerd's captured requests, sent by
eight clients at once in hypothesis-drawn batches. Every Docker id in a request is replaced
by a fresh one, so whatever appears in Neutron or OVS can be traced to the one request that
carried its id. Requests that pass the protocol models and create something (CreateNetwork,
RequestPool) make real Neutron networks at ~0.4 s each; after the first ``MAX_CREATES`` such
requests are no longer sent, which keeps the run to a few minutes and within Neutron's
quotas. What accepted requests made is removed through the daemon after each batch.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron, run
from tests.fuzz_requests import OUTAGE_CAUSES, FuzzRequest, post, post_reply, requests
from tests.integration.private_daemon import PrivateDaemon, private_daemon

pytestmark = pytest.mark.stack

BATCH = 50
BATCHES = 200
WORKERS = 8
MAX_CREATES = 40
KINDS = ("networks", "subnets", "ports", "subnetpools", "security-groups")
HEX_ID = re.compile(rb"[0-9a-f]{64}")
CIDR = re.compile(r"[0-9a-fA-F.:]+/\d{1,3}")
CREATING: dict[str, type[BaseModel]] = {
    "/NetworkDriver.CreateNetwork": p.CreateNetworkRequest,
    "/IpamDriver.RequestPool": p.RequestPoolRequest,
}


@dataclass
class Sent:
    path: str
    body: bytes
    status: int
    answer: Any
    cause: str


@dataclass
class Ledger:
    """Every request sent and its answer, shared by the client threads."""

    sent: list[Sent] = field(default_factory=list)
    creates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, request: FuzzRequest) -> bool:
        """False for a creating request past the budget (it is then not sent)."""
        model = CREATING.get(request.path)
        if model is None:
            return True
        try:
            model.model_validate_json(request.body)
        except (ValidationError, ValueError):
            return True
        with self.lock:
            self.creates += 1
            return self.creates <= MAX_CREATES

    def record(self, sent: Sent) -> None:
        with self.lock:
            self.sent.append(sent)


def fresh(body: bytes) -> bytes:
    return HEX_ID.sub(lambda _: secrets.token_hex(32).encode(), body)


def marks(body: bytes) -> set[str]:
    """What a resource made from this request would carry: id halves, short ids."""
    found: set[str] = set()
    for ident in HEX_ID.findall(body):
        text = ident.decode()
        found.update({text[:12], text[:32], text[32:]})
    return found


def cidrs(body: bytes) -> set[str]:
    found = set()
    for text in CIDR.findall(body.decode(errors="replace")):
        try:
            found.add(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            continue
    return found


def ovs_interfaces() -> dict[str, str]:
    out = run(["ovs-vsctl", "--format=json", "--columns=name,external_ids", "list", "Interface"])
    return {name: json.dumps(ext) for name, ext in json.loads(out.stdout)["data"]}


def undo_accepted(daemon: PrivateDaemon, sent: list[Sent]) -> None:
    """Remove what accepted creating requests made, the way Docker would."""
    for item in sent:
        if item.status != 200:
            continue
        if item.path == "/NetworkDriver.CreateNetwork":
            network_id = json.loads(item.body)["NetworkID"]
            body = json.dumps({"NetworkID": network_id}).encode()
            status, answer = post(daemon.socket, "/NetworkDriver.DeleteNetwork", body)
            assert status == 200, f"DeleteNetwork after {item.body[:200]!r}: {status} {answer}"
        elif item.path == "/IpamDriver.RequestPool":
            body = json.dumps({"PoolID": item.answer["PoolID"]}).encode()
            status, answer = post(daemon.socket, "/IpamDriver.ReleasePool", body)
            assert status == 200, f"ReleasePool {item.answer}: {status} {answer}"


def is_outage(item: Sent) -> bool:
    """A 502 that Neutron's own trouble explains (not Neutron refusing what Kuryr sent)."""
    return item.status == 502 and item.cause in OUTAGE_CAUSES


@pytest.fixture
def daemon(stack: StackFacts) -> Iterator[PrivateDaemon]:
    with private_daemon() as started:
        yield started


def test_ten_thousand_generated_requests(daemon: PrivateDaemon) -> None:
    neutron = Neutron()
    before = {kind: {r["id"] for r in neutron.find(kind)} for kind in KINDS}
    ovs_before = set(ovs_interfaces())
    ledger = Ledger()
    pool = ThreadPoolExecutor(WORKERS)

    def send(request: FuzzRequest) -> None:
        if not ledger.admit(request):
            return
        body = fresh(request.body)
        status, answer, cause = post_reply(daemon.socket, request.path, body)
        ledger.record(Sent(request.path, body, status, answer, cause))

    @settings(
        max_examples=BATCHES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(requests(), min_size=BATCH, max_size=BATCH))
    def batch(drawn: list[FuzzRequest]) -> None:
        start = len(ledger.sent)
        if start >= BATCH * BATCHES:
            return
        list(pool.map(send, drawn))
        undo_accepted(daemon, ledger.sent[start:])

    try:
        # Batches keep the creating requests' cleanup close to them; the count is checked
        # below, since skipped creating requests are not sent.
        while len(ledger.sent) < BATCH * BATCHES:
            batch()
    finally:
        pool.shutdown()

    assert daemon.process.poll() is None, "the daemon died\n" + daemon.log_text()[-3000:]
    statuses = Counter(item.status for item in ledger.sent)
    assert len(ledger.sent) >= BATCH * BATCHES >= 10_000, statuses
    server_errors = [i for i in ledger.sent if i.status >= 500 and not is_outage(i)]
    shown = [(i.path, i.body[:300], i.status, i.cause, i.answer) for i in server_errors[:5]]
    assert server_errors == [], shown
    assert "Traceback" not in daemon.log_text()

    refused = [i for i in ledger.sent if i.status != 200]
    refused_marks = set().union(*(marks(i.body) for i in refused))
    accepted_cidrs = set().union(*(cidrs(i.body) for i in ledger.sent if i.status == 200))
    refused_cidrs = set().union(*(cidrs(i.body) for i in refused)) - accepted_cidrs
    blamed = []
    for kind in KINDS:
        for resource in neutron.find(kind):
            if resource["id"] in before[kind]:
                continue
            dump = json.dumps(resource)
            if any(m in dump for m in refused_marks) or (
                kind == "subnetpools" and set(resource["prefixes"]) & refused_cidrs
            ):
                blamed.append(f"{kind} {resource['id']} {resource.get('name')}")
    for name, ext in ovs_interfaces().items():
        if name not in ovs_before and any(m in name + ext for m in refused_marks):
            blamed.append(f"OVS interface {name} {ext}")
    assert blamed == [], f"refused requests left resources: {blamed[:10]}"
