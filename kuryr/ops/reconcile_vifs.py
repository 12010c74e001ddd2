"""Reconciliation of this host's VIFs: the OVS interfaces Kuryr plugged and the host-side
veths named like Kuryr's (``tap`` + the first 11 characters of a port id).

A VIF is named after its port and replaced whenever the port is plugged again (for a
container, or ahead in its pool): it stays exactly as long as its port is kept. What goes is
unplugged through the binders (kuryr.backends.binding).
"""

from __future__ import annotations

import functools
import re

from kuryr.backends.binding.base import HOST_IF_PREFIX, Binder, host_ifname
from kuryr.backends.binding.ovs import OWNER_KEY
from kuryr.backends.binding.registry import Binders
from kuryr.backends.neutron_api import NeutronApi
from kuryr.ops.reconcile_plan import Plan, Run

_HOST_IF = re.compile(rf"^{HOST_IF_PREFIX}[0-9a-f]{{8}}-[0-9a-f]{{2}}$")


async def judge_vifs(
    plan: Plan, binders: Binders, neutron: NeutronApi, ports: set[str], kept: set[str]
) -> None:
    """``ports``: the ids of this host's ports in Neutron; ``kept``: those the plan keeps."""
    live = {host_ifname(port_id) for port_id in kept & ports}
    on_ovs: set[str] = set()
    if binders.ovsdb is not None:
        for state in await binders.ovsdb.interfaces():
            if OWNER_KEY not in state.external_ids:
                continue
            on_ovs.add(state.name)
            port_id = state.external_ids.get("iface-id", "")
            if port_id in kept or state.name in live:
                plan.keep("ovs-interface")
                continue
            unplug: Run = functools.partial(binders.for_vif_type("ovs").remove, state.name)
            if port_id not in ports:
                why, unplug = "its port is gone", _while_gone(neutron, port_id, unplug)
            else:
                why = "its port is orphaned"
            plan.add("ovs-interface", state.name, why, unplug)
    if binders.nested is not None:
        await _judge_nested(plan, binders.nested, neutron, ports)
    for name in sorted(await binders.netlink.names(HOST_IF_PREFIX)):
        if not _HOST_IF.match(name) or name in on_ovs:
            continue
        if name in live:
            plan.keep("veth")
            continue
        remove = functools.partial(binders.remove_stray, name)
        plan.add("veth", name, "not on OVS and no live port", remove)


async def _judge_nested(plan: Plan, binder: Binder, neutron: NeutronApi, ports: set[str]) -> None:
    """A nested VIF (a macvlan and its pair on the VM's port, a subport and its device) whose
    port is gone: the daemon was killed between the port's delete and the VIF's unplug
    (kuryr.domain.ports.prewire unplugs after the delete). An orphaned port's VIF goes with
    its release, or on a later pass once the port is deleted; a VIF of a port that is not
    this host's (an operator's subport) is not judged. Then a pair on the VM's port whose
    port is gone and no device names (:meth:`MacvlanBinder.traces`)."""
    removed: set[str] = set()
    for port_id, name in sorted((await binder.plugged()).items()):
        if not await _gone(neutron, ports, port_id):
            plan.keep("nested-vif")
            continue
        why = f"its port {port_id} is gone"
        remove = functools.partial(binder.remove, name)
        plan.add("nested-vif", name, why, _while_gone(neutron, port_id, remove))
        removed.add(port_id)
    for trace, port_id in sorted((await binder.traces()).items()):
        if port_id in removed:
            continue  # goes with its device
        if not await _gone(neutron, ports, port_id):
            plan.keep("vm-port-pair")
            continue
        why = f"its port {port_id} is gone (a write Neutron applied late)"
        erase = functools.partial(binder.erase, trace)
        plan.add("vm-port-pair", trace, why, _while_gone(neutron, port_id, erase))


async def _gone(neutron: NeutronApi, ports: set[str], port_id: str) -> bool:
    """Not among this host's ports, nor in Neutron (a port of another host stays alone)."""
    return port_id not in ports and await neutron.show("ports", port_id) is None


def _while_gone(neutron: NeutronApi, port_id: str, run: Run) -> Run:
    """``run``, unless the port is back: made after the plan read Neutron (a pool refill),
    plugged ahead, so what the plan judged is that port's now."""

    async def run_while_gone() -> None:
        if await neutron.show("ports", port_id) is None:
            await run()

    return run_while_gone
