"""Without a daemon the sandbox fails closed with a message that says what to do."""

from __future__ import annotations

import pytest

from ossa.sandbox import Limits, SandboxError, SandboxUnavailable, open_session


def test_no_daemon_raises_sandbox_unavailable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with pytest.raises(SandboxUnavailable, match="no Docker daemon answers") as caught:
        open_session()
    assert "start-dockerd" in str(caught.value)
    assert isinstance(caught.value, SandboxError)


@pytest.mark.parametrize("bad", [{"cpus": 0}, {"pids": 1}, {"timeout": -1}, {"max_output": 0}])
def test_limits_out_of_range_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Limits(**bad)


def test_unknown_limit_is_refused() -> None:
    with pytest.raises(TypeError, match="memroy"):
        open_session(memroy="1g")
