"""The machine's own binders (OVS on br-int), loaded as the daemon loads them, for tests that
plug VIFs by hand on the live stack."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kuryr.backends.binding.registry import Binders, load
from kuryr.config import BindingConfig


def host_binders_fixture() -> Callable[..., AsyncIterator[Binders]]:
    """A function-scoped fixture: the binders, closed after the test."""

    @pytest.fixture
    async def host_binders(stack: Any) -> AsyncIterator[Binders]:
        loaded = await load(BindingConfig())
        try:
            yield loaded
        finally:
            await loaded.close()

    return host_binders
