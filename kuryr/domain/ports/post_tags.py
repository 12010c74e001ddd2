"""Whether Neutron keeps the tags of a port POST, asked once.

Neutron accepts ``tags`` in a port POST body but keeps them only when ML2's extension driver
``tag_ports_during_bulk_creation`` is on, which ``GET /extensions`` shows by its alias. With it,
pool ports carry their tag from their bulk create and cost no ``PUT /ports/{id}/tags`` each;
without it (or when Neutron will not say), the tag is PUT afterwards, as before (the journal
sees a port without it and writes it, kuryr.domain.ports.journal).
"""

from __future__ import annotations

import asyncio
import logging

from kuryr.backends.neutron_api import NeutronApi, NeutronError

LOG = logging.getLogger(__name__)

POST_TAGS_EXTENSION = "tag-ports-during-bulk-creation"


class PostTags:
    def __init__(self, neutron: NeutronApi) -> None:
        self._neutron = neutron
        self._known: bool | None = None
        self._asking = asyncio.Lock()

    async def supported(self) -> bool:
        """Neutron keeps tags posted with a port. Asked on first use (every caller meanwhile
        shares the one question); a failure Neutron may get over (no answer, a 5xx) is asked
        again next time, the tags going by PUT meanwhile."""
        if self._known is None:
            async with self._asking:
                if self._known is None:
                    self._known = await self._ask()
        return bool(self._known)

    async def _ask(self) -> bool | None:
        """The answer, or None when Neutron gave none worth keeping."""
        try:
            found = await self._neutron.query("extensions")
        except NeutronError as exc:
            if exc.http_status == 0 or exc.http_status >= 500:
                LOG.warning("Neutron's extensions unknown for now: %s", exc)
                return None
            found = []  # refused (a policy): as good as not there
        keeps = any(ext.get("alias") == POST_TAGS_EXTENSION for ext in found)
        LOG.info(
            "Neutron %s tags in port POST bodies (extension %s)",
            "keeps" if keeps else "ignores",
            POST_TAGS_EXTENSION,
        )
        return keeps
