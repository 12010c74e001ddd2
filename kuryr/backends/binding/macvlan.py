"""Nested ``macvlan`` binding: containers on macvlan devices of the VM's NIC.

The container's device is a macvlan of the VM's NIC (bridge mode: containers of one VM reach
each other through it) with the container port's MAC, named as a veth's container end so
Docker moves it into the container. Neutron sees the traffic on the VM's port, whose port
security lets through only its own addresses and its ``allowed_address_pairs``: each
container's (address, MAC) is added there while it is plugged.

The device's MAC is not its port's but one derived from it (:func:`device_mac`, bit 2 of
the first octet flipped), in the pair too. ML2/OVN makes the container's port, unbound and
holding an address of the VM port's pairs, an OVN ``virtual`` port with the port's MAC, and
lists each pair's MAC among the VM port's addresses: with the same MAC, OVN's L2 lookup has
two flows for it and br-int kept the virtual port's, which delivers nothing until OVN claims
it (issue 15, finding 3: the network's answers to a container were lost). With a MAC of its
own, only the VM port claims it. Docker's ``--mac-address X`` is honoured the other way
round: the device and its pair carry X, the port X with that bit flipped.

The pairs are one list on one port, written by every start and removal in the VM at once: a
write is a read of the port, the change, and a PUT with ``If-Match`` on the revision read,
repeated from the read when Neutron answers 412, so no writer loses another's pair.
Neutron checks ``If-Match`` before its transaction, not in it: two PUTs of one revision can
both pass, and the later one then fails on the pairs' unique key as a 400
``DuplicateAddressPairInRequest`` (seen live: two Joins in one VM). So one daemon writes its
VM port's pairs one change at a time (``MacvlanBinder._pairs_lock``), and a duplicate refused
for a list that holds none is taken as the lost race it is: read again, change again.

A pair lives only while its device does: a plug makes the device (with its alias, the port
id) before the pair, an unplug removes the pair before the device. A daemon killed between
two steps so leaves at most a device, which reconciliation finds by its alias (seen live:
pairs of deleted ports left after SIGKILL rounds). Neutron can still apply a write after a
later one: a write of a killed daemon still in its hands, or either of two writes of one
revision. A pair can so come back after its device went, and no device names it. So every
pair written is recorded in the state file (``vm_pairs``) before its write, and
reconciliation takes off the recorded pairs that the VM's port holds for a gone port
(:meth:`MacvlanBinder.traces`); a record whose pair the port does not hold is forgotten once
no late write can bring the pair back (:data:`LATE_WRITE_BOUND`). Pairs not recorded (an
operator's, such as a VRRP address) are never touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from kuryr.backends.binding.base import Binder, Vif
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.netlink import Netlink
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.backends.state import State
from kuryr.errors import BackendError

ALIAS_PREFIX = "kuryr-port:"
# Conditional writes refused (412) before giving up: each refusal means another writer won.
_ATTEMPTS = 20
DUPLICATE_PAIR = "DuplicateAddressPairInRequest"
# How long after a pair's last write Neutron may still apply an older write of the VM's port
# (a PUT takes up to 1.5 s under the crash tests' load).
LATE_WRITE_BOUND = 60.0

Pair = dict[str, str]
Change = Callable[[list[Pair]], list[Pair] | None]


def device_mac(port_mac: str) -> str:
    """The container device's MAC: the port's with bit 2 of the first octet flipped
    (Neutron's fa:16:3e:... becomes fe:16:3e:..., locally administered as the port's is).

    Its own inverse, so it is also the port's MAC for a device MAC Docker asks for
    (``--mac-address``): any unicast MAC maps to a unicast MAC that differs from it."""
    first, _, rest = port_mac.lower().partition(":")
    return f"{int(first, 16) ^ 0x04:02x}:{rest}"


def _key(pair: Mapping[str, Any]) -> tuple[str, str]:
    return str(pair.get("ip_address")), str(pair.get("mac_address") or "").lower()


def with_pairs(
    current: Sequence[Mapping[str, Any]], ips: Iterable[str], mac: str
) -> list[Pair] | None:
    """The pairs with (ip, mac) for each of ``ips``; None when all are there already."""
    pairs = [dict(p) for p in current]
    have = {_key(p) for p in pairs}
    wanted = [{"ip_address": ip, "mac_address": mac} for ip in ips]
    missing = [p for p in wanted if _key(p) not in have]
    return pairs + missing if missing else None


def without_pairs(
    current: Sequence[Mapping[str, Any]], ips: Iterable[str], mac: str
) -> list[Pair] | None:
    """The pairs without (ip, mac) for each of ``ips``; None when none is there."""
    gone = {(ip, mac.lower()) for ip in ips}
    pairs = [dict(p) for p in current]
    kept = [p for p in pairs if _key(p) not in gone]
    return kept if len(kept) != len(pairs) else None


def without_mac(current: Sequence[Mapping[str, Any]], mac: str) -> list[Pair] | None:
    """The pairs without any of ``mac`` (a device whose port is known only by its MAC)."""
    pairs = [dict(p) for p in current]
    kept = [p for p in pairs if _key(p)[1] != mac.lower()]
    return kept if len(kept) != len(pairs) else None


async def change_pairs(neutron: NeutronApi, port_id: str, change: Change) -> None:
    """Read, change, write with If-Match; again from the read when another writer won."""
    for _ in range(_ATTEMPTS):
        raw = await neutron.show("ports", port_id)
        if raw is None:
            raise BackendError(f"the VM's port {port_id} is gone")
        wanted = change(list(raw.get("allowed_address_pairs") or []))
        if wanted is None:
            return
        try:
            await neutron.update(
                "ports",
                port_id,
                {"allowed_address_pairs": wanted},
                revision=int(raw["revision_number"]),
            )
            return
        except NeutronError as exc:
            if not (exc.stale or _lost_race(exc, wanted)):
                raise
    raise BackendError(
        f"the VM's port {port_id}: allowed_address_pairs changed under {_ATTEMPTS} writes in a row"
    )


def _lost_race(exc: NeutronError, sent: Sequence[Mapping[str, Any]]) -> bool:
    """Neutron's duplicate-pair refusal of a list without duplicates: another write of the
    same revision committed first (see the module's docstring)."""
    keys = [_key(p) for p in sent]
    return exc.neutron_type == DUPLICATE_PAIR and len(set(keys)) == len(keys)


class MacvlanBinder(Binder):
    vif_types: ClassVar[frozenset[str]] = frozenset()  # every port (registry.Binders.nested)
    plugs_unbound: ClassVar[bool] = True

    def __init__(self, neutron: NeutronApi, netlink: Netlink, nic: VmNic, state: State) -> None:
        self._neutron = neutron
        self._netlink = netlink
        self._nic = nic
        self._state = state  # the record of the pairs written (the module's docstring)
        # OVN delivers to a container's (virtual) port once the VM announces its address.
        # Ports whose pairs this daemon wrote: ready() reads no Neutron (the fast path).
        self._paired: set[str] = set()
        # This daemon's changes of the VM port's pairs, one at a time (module docstring).
        self._pairs_lock = asyncio.Lock()

    def device_mac(self, port_mac: str) -> str:
        return device_mac(port_mac)

    def port_mac(self, device_mac_: str) -> str:
        """``--mac-address X``: the device and its pair carry X, the port X's image, never
        X itself (the module's docstring: one MAC for both and OVN delivers to neither)."""
        return device_mac(device_mac_)

    async def filtering_port(self) -> str:
        """The VM's port: a container's traffic is delivered to its device's MAC, a pair of
        the VM's port, so OVN applies the VM port's groups; the container's port is unbound
        and its own groups apply to nothing."""
        return (await self._nic.port()).id

    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        mac = device_mac(vif.mac_address)
        try:
            await self._netlink.create_sublink(
                vif.container_ifname, await self._nic.index(), mac, vif.mtu
            )
            await self._netlink.set_alias(vif.container_ifname, ALIAS_PREFIX + vif.port_id)
            self._state.pairs_written(vif.port_id, vif.ips, mac)
            await self._change_pairs(lambda cur: with_pairs(cur, vif.ips, mac))
            self._paired.add(vif.port_id)
        except BaseException:
            await self.undo_plug(vif)
            raise

    async def ready(self, vif: Vif) -> bool:
        link = await self._netlink.link(vif.container_ifname)
        if link is None or vif.port_id not in self._paired:
            return False
        return (
            link.kind == "macvlan"
            and link.peer == await self._nic.index()
            and link.mac.lower() == device_mac(vif.mac_address)
            and link.mtu == vif.mtu
            and not (link.up or link.promisc or link.allmulti)
            and link.alias == ALIAS_PREFIX + vif.port_id
        )

    async def unplug(self, vif: Vif) -> None:
        mac = device_mac(vif.mac_address)
        await self._change_pairs(lambda cur: without_pairs(cur, vif.ips, mac))
        self._state.pairs_removed(mac, vif.ips)
        self._paired.discard(vif.port_id)
        await self._netlink.delete_link(vif.container_ifname)

    async def plugged(self) -> dict[str, str]:
        aliased = await self._netlink.aliased(ALIAS_PREFIX)
        return {alias[len(ALIAS_PREFIX) :]: ifname for alias, ifname in aliased.items()}

    async def remove(self, host_ifname: str) -> None:
        """A device known by name only (its port may be gone): the pairs of its MAC go too."""
        link = await self._netlink.link(host_ifname)
        if link is not None and link.alias.startswith(ALIAS_PREFIX):
            await self._change_pairs(lambda cur: without_mac(cur, link.mac))
            self._state.pairs_removed(link.mac)
            self._paired.discard(link.alias[len(ALIAS_PREFIX) :])
        await self._netlink.delete_link(host_ifname)

    async def traces(self) -> dict[str, str]:
        """The recorded pairs the VM's port holds ("ip mac" -> port id). Records of pairs it
        does not hold, last written over :data:`LATE_WRITE_BOUND` ago, are forgotten."""
        records = self._state.vm_pairs()
        if not records:
            return {}
        vm = await self._nic.port()
        raw = await self._neutron.show("ports", vm.id)
        if raw is None:
            raise BackendError(f"the VM's port {vm.id} is gone")
        held = {_key(p) for p in raw.get("allowed_address_pairs") or []}
        found: dict[str, str] = {}
        for record in records:
            if (record.ip, record.mac) in held:
                found[f"{record.ip} {record.mac}"] = record.port_id
            elif time.time() - record.at > LATE_WRITE_BOUND:
                self._state.forget_vm_pair(record.ip, record.mac)
        return found

    async def erase(self, trace: str) -> None:
        ip, mac = trace.split()
        await self._change_pairs(lambda cur: without_pairs(cur, [ip], mac))
        self._state.pairs_removed(mac, [ip])

    async def _change_pairs(self, change: Change) -> None:
        vm = await self._nic.port()
        async with self._pairs_lock:
            await change_pairs(self._neutron, vm.id, change)

    async def close(self) -> None:
        """The netlink socket belongs to the registry, the Neutron client to the daemon."""
