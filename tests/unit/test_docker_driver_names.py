"""The names a Docker network gives Kuryr's driver: the reconciliation and ``kuryr port``
must see a managed plugin's networks as Kuryr's, whichever name ``-d`` used."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from kuryr.backends import dockerd
from kuryr.ops import reconcile_docker


def test_bare_name_and_managed_plugin_reference() -> None:
    assert dockerd.driver_names("kuryr") == ("kuryr", "kuryr:latest")


def test_the_reconciliation_asks_dockerd_for_both(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def get(_socket: Path, url: str, timeout: float = 0.0) -> Any:
        asked.append(url)
        if url.startswith("/networks?"):
            return [{"Id": "n1", "Driver": "kuryr:latest"}]
        return {"Containers": {"c": {"EndpointID": "e1", "IPv4Address": "10.0.0.5/24"}}}

    monkeypatch.setattr(dockerd, "get", get)
    view = reconcile_docker._read(Path("/nonexistent.sock"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(asked[0]).query)
    assert json.loads(query["filters"][0]) == {"driver": ["kuryr", "kuryr:latest"]}
    assert view.networks == frozenset({"n1"})
    assert view.endpoints == {"e1": ("n1", frozenset({"10.0.0.5"}))}
