"""What the host looked like before the first ``up``, so ``down`` removes only what the stack
made: network links, run directories and mounts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from kuryr.stack import netdev
from kuryr.stack.layout import OVN_RUN, OVS_RUN, PLUGIN_SOCK, Layout

RUN_DIRS = (OVS_RUN, OVN_RUN, Path("/var/run/docker"), PLUGIN_SOCK.parent)
STACK_LINKS = ("docker0", "br-int", "ovs-netdev", "br-ex")


def _snapshot_file(layout: Layout) -> Path:
    return layout.sub("host-before.json")


def remember(layout: Layout) -> None:
    """Record the host's links and run directories, once, before anything is started."""
    path = _snapshot_file(layout)
    if path.exists():
        return
    snapshot = {
        "links": sorted(netdev.existing_links()),
        "dirs": [str(d) for d in RUN_DIRS if d.exists()],
    }
    path.write_text(json.dumps(snapshot, indent=1) + "\n")


def _before(layout: Layout) -> tuple[set[str], set[str]]:
    try:
        snapshot = json.loads(_snapshot_file(layout).read_text())
    except (OSError, ValueError):
        return set(), set()
    return set(snapshot.get("links", [])), set(snapshot.get("dirs", []))


def unmount_under(root: Path) -> None:
    """Lazily unmount everything mounted below ``root``, deepest first."""
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if Path(target) == root or root in Path(target).parents:
            mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def restore(layout: Layout) -> None:
    """Remove the links and run directories the stack created (processes already stopped)."""
    links, dirs = _before(layout)
    netdev.delete_links(name for name in STACK_LINKS if name not in links)
    for directory in RUN_DIRS:
        if str(directory) not in dirs and directory.exists():
            unmount_under(directory)
            shutil.rmtree(directory, ignore_errors=True)
