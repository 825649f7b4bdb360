"""The warm pool hands out fresh, started sessions and removes the spares when closed."""

from __future__ import annotations

import docker
import pytest

from ossa.sandbox.container import OWNER_LABEL, owner_id
from ossa.sandbox.pool import WarmPool

pytestmark = pytest.mark.docker


def ours(client: docker.DockerClient) -> list:
    """This process's sandbox containers (other processes may be using the daemon too)."""
    return client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner_id()}"})


def test_pool_hands_out_fresh_sessions_and_cleans_up() -> None:
    client = docker.from_env()
    before = {c.id for c in ours(client)}  # other tests' sessions may still be open
    with WarmPool(size=1, memory="256m") as pool:
        first = pool.session()
        second = pool.session()  # started by the filler after the first was taken
        with first, second:
            first.run("leak = 'first'")
            assert second.run("'leak' in globals()").result == "False"
            assert first.container_id != second.container_id
    assert {c.id for c in ours(client)} == before  # the taken ones closed, the spare removed


def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WarmPool(size=0)
