"""Creates whose answer may be lost: nothing a failed CreateNetwork made outlives it.

A POST Neutron is slow to answer (17 s under load, the client gives up after 10), or whose
daemon is killed before the answer, may still be done by Neutron: the network is there,
untagged (its tags are written after the create), and Docker, which got an error, has no
network. So each create on CreateNetwork's path is recorded first, locally and durably, as an
*intent*: the resource, the fields that find it in Neutron (a name carrying the Docker
network's id, the creator's description, the network or device it is on) and, once the answer
comes, its id. The intents of a CreateNetwork go, in the same commit as the network it saved,
when it succeeds. When it fails they are *settled* in the background: what each one made is
looked for and deleted (by id when the answer came, else by its fields, for up to
:data:`WINDOW` seconds as Neutron may finish the create late); intents a killed daemon left
are settled the same way at the next start. A 4xx answer is a refusal: nothing was made.

Deleted, not adopted: dockerd keeps no network whose CreateNetwork failed, and ``docker
network create`` again gets a new id, so nothing would claim what a lost create made; a
CreateNetwork dockerd does repeat with the same id (a swarm node) first deletes what its
predecessor left so far, then makes its own (adopting a half-made leftover would mean
finishing, under a new budget, a create that may not even have landed yet). Settling
never takes what another create of the same Docker network made: a found resource whose id
another intent knows, or that carries a Docker network's id tags (a create that got that far
was answered), is left alone, and a settle and a create of the same Docker network never run
their Neutron calls at once (one lock per Docker network).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kuryr import naming
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.backends.state import State
from kuryr.domain.ports.journal import background, stopped
from kuryr.errors import KuryrError

LOG = logging.getLogger(__name__)

# How long after its POST a create that got no answer may still land in Neutron: Neutron
# finishes a request whose client gave up, however slowly (17 s seen under load).
WINDOW = 180.0
FIRST_LOOK = 0.0
MAX_STEP = 5.0


@dataclass(frozen=True)
class Intent:
    resource: str  # Neutron's collection, e.g. "networks"
    match: dict[str, Any]  # the query that finds what the create made
    owner: str  # the Docker network it is for
    at: float = field(default_factory=time.time)
    id: str = ""  # Neutron's id, once the create was answered

    def data(self) -> dict[str, Any]:
        return {"resource": self.resource, "match": self.match, "owner": self.owner,
                "at": self.at, "id": self.id}  # fmt: skip

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Intent:
        return cls(data["resource"], dict(data["match"]), data["owner"], data["at"], data["id"])


def refused(exc: BaseException) -> bool:
    """Neutron answered the create with a refusal: it made nothing."""
    return isinstance(exc, NeutronError) and 400 <= exc.http_status < 500


class Attempt:
    """The creates of one CreateNetwork, recorded before each POST."""

    def __init__(self, lost: LostCreates, owner: str) -> None:
        self._lost = lost
        self.owner = owner
        self._keys: list[str] = []

    async def create(
        self, resource: str, attrs: Mapping[str, Any], keys: Iterable[str]
    ) -> Resource:
        """POST ``attrs``, recorded first with the fields ``keys`` of it that find it again."""
        [made] = await self._post(resource, [attrs], keys, bulk=False)
        return made

    async def create_bulk(
        self, resource: str, items: Sequence[Mapping[str, Any]], keys: Iterable[str]
    ) -> list[Resource]:
        """POST ``items`` in one call, each recorded first as :meth:`create` does."""
        return await self._post(resource, items, keys, bulk=True)

    async def _post(
        self, resource: str, items: Sequence[Mapping[str, Any]], keys: Iterable[str], bulk: bool
    ) -> list[Resource]:
        keys = list(keys)
        intents = {
            uuid.uuid4().hex: Intent(resource, {k: i[k] for k in keys if k in i}, self.owner)
            for i in items
        }
        state, neutron = self._lost.state, self._lost.neutron
        with state.transaction():
            for key, intent in intents.items():
                state.intent_put(key, intent.data())
        self._keys += intents
        async with self._lost.lock(self.owner):
            try:
                if bulk:
                    made = await neutron.create_bulk(resource, items)
                else:
                    made = [await neutron.create(resource, items[0])]
            except BaseException as exc:
                if refused(exc):
                    self._drop(intents)
                    raise
                if isinstance(exc, NeutronError):
                    raise _lost_answer(exc, resource, items) from exc
                raise
            with state.transaction():
                for (key, intent), raw in zip(intents.items(), made, strict=True):
                    state.intent_put(key, {**intent.data(), "id": str(raw["id"])})
        return made

    def _drop(self, keys: Iterable[str]) -> None:
        for key in list(keys):
            self._lost.state.intent_done(key)
            self._keys.remove(key)

    def done(self) -> None:
        """The CreateNetwork succeeded: what it made stays (call inside the commit that saves
        the network, so no crash leaves one without the other)."""
        self._drop(list(self._keys))

    def failed(self) -> None:
        """The CreateNetwork failed: what its creates made is deleted in the background."""
        self._lost.settle(self._keys)
        self._keys = []


class LostCreates:
    def __init__(self, state: State, neutron: NeutronApi) -> None:
        self.state = state
        self.neutron = neutron
        self._locks: dict[str, asyncio.Lock] = {}
        self._settling: dict[str, asyncio.Task[None]] = {}
        self._stopped = False

    async def attempt(self, owner: str) -> Attempt:
        """The creates of a CreateNetwork of ``owner``. One repeated for the same Docker
        network first deletes what its predecessor's lost creates made so far (one look), so
        it never takes that for its own: an anchor is found by the Docker network's id."""
        for key, data in self.state.intents().items():
            if data["owner"] == owner and key in self._settling:
                try:
                    if await self._settle_once(key, Intent.of(data)):
                        self.state.intent_done(key)
                except KuryrError as exc:
                    LOG.warning("cleanup of a failed create of %s: %s", data["resource"], exc)
        return Attempt(self, owner)

    def lock(self, owner: str) -> asyncio.Lock:
        return self._locks.setdefault(owner, asyncio.Lock())

    def resume(self) -> None:
        """Settle the intents an earlier run left (killed between a POST and its answer, or
        before the CreateNetwork ended): no CreateNetwork of this run owns them."""
        left = list(self.state.intents())
        if left:
            LOG.info("%d create(s) of an earlier run left unsettled: settling them", len(left))
        self.settle(left)

    def settle(self, keys: Iterable[str]) -> None:
        for key in keys:
            if key not in self._settling and not self._stopped:
                self._settling[key] = background(self._settle(key), f"lost-create-{key[:8]}")

    async def settled(self) -> None:
        """Wait until every settle under way is over (tests, shutdown)."""
        while self._settling:
            await asyncio.gather(*self._settling.values(), return_exceptions=True)

    async def stop(self) -> None:
        """Stop settling; what is unsettled stays recorded for the next start."""
        self._stopped = True
        for task in list(self._settling.values()):
            await stopped(task)

    async def _settle(self, key: str) -> None:
        step = FIRST_LOOK
        try:
            while (data := self.state.intents().get(key)) is not None:
                intent = Intent.of(data)
                await asyncio.sleep(step)
                try:
                    if await self._settle_once(key, intent):
                        self.state.intent_done(key)
                        return
                except KuryrError as exc:
                    LOG.warning("cleanup of a failed create of %s: %s", intent.resource, exc)
                if time.time() - intent.at > WINDOW:
                    LOG.error(
                        "gave up on a failed create of %s %s (Docker network %s) after %gs",
                        intent.resource, intent.id or intent.match, intent.owner[:12], WINDOW,
                    )  # fmt: skip
                    self.state.intent_done(key)
                    return
                step = min(max(step * 2, 1.0), MAX_STEP)
        finally:
            self._settling.pop(key, None)

    async def _settle_once(self, key: str, intent: Intent) -> bool:
        """Delete what ``intent``'s create made; True once nothing is left to look for."""
        async with self.lock(intent.owner):
            if intent.id:
                await self._delete(intent.resource, intent.id)
                return True
            known = {Intent.of(d).id for k, d in self.state.intents().items() if k != key}
            found = [
                raw
                for raw in await self.neutron.query(intent.resource, intent.match)
                if raw["id"] not in known and not naming.tag_claims(raw.get("tags") or [])
            ]
            for raw in found:
                LOG.info(
                    "deleting %s %s: made by a create whose answer was lost (Docker network %s)",
                    intent.resource, raw["id"], intent.owner[:12],
                )  # fmt: skip
                await self._delete(intent.resource, str(raw["id"]))
            # Nothing found yet: Neutron may still be making it (until the window is over).
            return bool(found)

    async def _delete(self, resource: str, resource_id: str) -> None:
        try:
            await self.neutron.delete(resource, resource_id)
        except NeutronError as exc:
            if not exc.not_found:
                raise


def _lost_answer(
    exc: NeutronError, resource: str, items: Sequence[Mapping[str, Any]]
) -> NeutronError:
    names = ", ".join(str(i.get("name") or "") for i in items)
    return NeutronError(
        f"{exc}; the {resource} it may have made ({names}) will be deleted",
        exc.http_status,
        exc.neutron_type,
        exc.cause,
    )
