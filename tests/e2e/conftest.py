"""Fixtures of the end-to-end tests: real dockerd, the real Kuryr daemon, the real stack."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.conftest import StackFacts
from tests.e2e.helpers import DockerEnv, Neutron


@pytest.fixture(autouse=True)
def _stack_is_up(stack: StackFacts) -> None:
    """Every e2e test needs the whole stack including the Kuryr daemon: fail, never skip."""
    if not stack.kuryr_healthy:
        pytest.fail(f"the Kuryr daemon is not healthy: {stack.kuryr_detail}", pytrace=False)


@pytest.fixture(scope="session")
def neutron() -> Neutron:
    return Neutron()


@pytest.fixture
def env() -> Iterator[DockerEnv]:
    resources = DockerEnv()
    try:
        yield resources
    finally:
        resources.close()


@pytest.fixture
def rel_env(env: DockerEnv) -> DockerEnv:
    """The disruptive tests' resources, under a ``rel-`` prefix of their own."""
    env.prefix = f"rel-{secrets.token_hex(4)}"
    return env
