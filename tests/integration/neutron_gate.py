"""A gate in front of the shared Neutron for one private daemon: it forwards every call, except
those a test chooses to hold (never forwarded: the call hangs as on a hung Neutron, the state
a SIGKILL then interrupts), to fail (503, as a Neutron going down answers), to lose (forwarded
and done by Neutron, but answered 503: an answer lost to a timeout or a killed client) or to
hold the answer of (forwarded and done, answered 503 only when released: the state a SIGKILL
between a call Neutron did and its answer interrupts).

The shared Neutron itself is never stopped or slowed: only the private daemon pointed at the
gate sees its rules.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOLD = "hold"
FAIL = "fail"
LOSE = "lose"
HOLD_ANSWER = "hold-answer"

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Rule:
    method: str
    path: re.Pattern[str]
    action: str
    seen: int = 0
    released: threading.Event = field(default_factory=threading.Event)


@dataclass
class NeutronGate:
    upstream: str
    url: str = ""
    _rules: list[Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, method: str, path: str) -> Rule:
        """Calls ``method`` on a path matching the regex ``path`` hang, never forwarded."""
        return self._add(Rule(method, re.compile(path), HOLD))

    def fail(self, method: str, path: str) -> Rule:
        """Calls ``method`` on a path matching ``path`` get a 503, never forwarded."""
        return self._add(Rule(method, re.compile(path), FAIL))

    def lose(self, method: str, path: str) -> Rule:
        """Calls ``method`` on a path matching ``path`` are forwarded, and Neutron's answer is
        replaced by a 503."""
        return self._add(Rule(method, re.compile(path), LOSE))

    def hold_answer(self, method: str, path: str) -> Rule:
        """Calls ``method`` on a path matching ``path`` are forwarded, and Neutron's answer is
        held until :meth:`clear`, then replaced by a 503."""
        return self._add(Rule(method, re.compile(path), HOLD_ANSWER))

    def clear(self) -> None:
        """Forward everything again; calls held so far are answered 503, not forwarded."""
        with self._lock:
            for rule in self._rules:
                rule.released.set()
            self._rules.clear()

    def seen(self, rule: Rule) -> int:
        with self._lock:
            return rule.seen

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.method == method and rule.path.search(path):
                    rule.seen += 1
                    return rule
        return None


def _handler(gate: NeutronGate) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(gate.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pytest shows the test's own output."""

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            rule = gate.rule_for(self.command, self.path)
            if rule is not None and rule.action not in (LOSE, HOLD_ANSWER):
                if rule.action == HOLD:
                    rule.released.wait()
                message = f"gate: {rule.action} {self.command} {self.path}"
                self._answer(503, {"NeutronError": {"type": "Gate", "message": message}})
                return
            upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=60)
            try:
                sent = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=sent)
                response = upstream.getresponse()
                data = response.read()
            finally:
                upstream.close()
            if rule is not None:
                if rule.action == HOLD_ANSWER:
                    rule.released.wait()
                message = f"gate: lost the answer {response.status} to {self.command} {self.path}"
                self._answer(503, {"NeutronError": {"type": "Gate", "message": message}})
                return
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            self._reply(response.status, headers, data)

        def _answer(self, status: int, body: dict[str, object]) -> None:
            self._reply(status, [("Content-Type", "application/json")], json.dumps(body).encode())

        def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            try:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client (a killed daemon) is gone

        do_GET = do_POST = do_PUT = do_DELETE = _any

    return Handler


@contextmanager
def neutron_gate(upstream: str) -> Iterator[NeutronGate]:
    """A gate on a free loopback port forwarding to ``upstream``; closed at the end."""
    gate = NeutronGate(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(gate))
    server.daemon_threads = True
    gate.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="neutron-gate", daemon=True)
    thread.start()
    try:
        yield gate
    finally:
        gate.clear()
        server.shutdown()
        server.server_close()
        thread.join()
