"""Host network devices the stack made: listing and deleting them with `ip` (argv lists)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable


def existing_links() -> set[str]:
    done = subprocess.run(
        ["ip", "-j", "link", "show"], capture_output=True, check=False, timeout=10
    )
    if done.returncode != 0:
        return set()
    return {str(link["ifname"]) for link in json.loads(done.stdout or b"[]")}


def delete_links(names: Iterable[str]) -> None:
    present = existing_links()
    for name in names:
        if name in present:
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
