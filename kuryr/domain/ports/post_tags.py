"""Whether Neutron keeps the tags of a port POST, learnt from its first answer.

Neutron keeps ``tags`` posted with a port only when ML2's extension driver
``tag_ports_during_bulk_creation`` is on; without it, it accepts and drops them. The
extension's alias is not listed by every Neutron that has it on (this stack's is not), so
``GET /extensions`` cannot tell: the first bulk create posts the pool tag, and whether the
ports Neutron returns carry it settles the question. With it, pool ports cost no
``PUT /ports/{id}/tags`` each; without it the tag is PUT afterwards, as before (the pool sees
a port without it and journals the write, kuryr.domain.ports.pools).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kuryr import naming
from kuryr.domain.ports.port import Port

LOG = logging.getLogger(__name__)

EXTENSION_DRIVER = "tag_ports_during_bulk_creation"


class PostTags:
    def __init__(self) -> None:
        self._kept: bool | None = None

    def tags(self) -> list[str]:
        """The tags to post with a pool port: none once Neutron showed it drops them."""
        return [] if self._kept is False else [naming.POOL_TAG]

    def learn(self, made: Sequence[Port]) -> None:
        """Settle the question on the first ports made with the tag posted."""
        if self._kept is not None or not made:
            return
        self._kept = all(naming.POOL_TAG in port.tags for port in made)
        LOG.info(
            "Neutron %s tags posted with a port (ML2 extension driver %s)",
            "keeps" if self._kept else "drops",
            EXTENSION_DRIVER,
        )
