"""Sessions for the sandbox tests, once per container runtime (runc, and gVisor's runsc)."""

from __future__ import annotations

import docker
import pytest

from ossa.sandbox import open_session

RUNTIMES = [
    pytest.param("runc", id="runc"),
    pytest.param("runsc", id="runsc", marks=pytest.mark.runsc),
]


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str | None:
    """None for Docker's default runtime; "runsc" where gVisor is registered, else a skip."""
    if request.param == "runsc":
        runtimes = docker.from_env().info().get("Runtimes", {})
        if "runsc" not in runtimes:
            pytest.skip("gVisor's runsc is not registered with Docker (scripts/install-runsc.sh)")
        return "runsc"
    return None


@pytest.fixture(scope="module")
def session(runtime: str | None):
    """One session shared by the tests of a module that leave it usable."""
    with open_session(runtime=runtime, timeout=30) as shared:
        yield shared
