"""Neutron's default subnetpools for Kuryr, ``kuryr`` (IPv4) and ``kuryr6`` (IPv6 ULA)."""

from __future__ import annotations

import urllib.error
from pathlib import Path

from kuryr.stack import neutron_api
from kuryr.stack.errors import StackError
from kuryr.stack.layout import Layout


class Subnetpools:
    name = "subnetpools"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    @property
    def log(self) -> Path:
        return self.layout.log("neutron-server")

    def start(self) -> None:
        try:
            neutron_api.ensure_default_pools()
        except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
            reason = f"cannot create the default subnetpools: {exc}"
            raise StackError(self.name, reason, self.log) from exc

    def stop(self) -> None:
        """They live in Neutron's database."""

    def check(self) -> tuple[bool, str]:
        try:
            pools = neutron_api.call("GET", "/v2.0/subnetpools", timeout=5)["subnetpools"]
        except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
            return False, f"cannot list subnetpools: {exc}"
        found = {p["name"]: p["prefixes"][0] for p in pools}
        missing = [n for n in (neutron_api.V4_POOL[0], neutron_api.V6_POOL_NAME) if n not in found]
        if missing:
            return False, f"missing subnetpool(s): {', '.join(missing)}"
        return True, ", ".join(
            f"{n} {found[n]}" for n in (neutron_api.V4_POOL[0], neutron_api.V6_POOL_NAME)
        )

    def purge(self) -> None:
        """They live in Neutron's database."""
