"""Shared test configuration: where the shipped vocabulary lives, Docker availability."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parent.parent / "ossa" / "data"
# openai-harmony (the oracle) loads o200k_base offline from this directory.
os.environ.setdefault("TIKTOKEN_ENCODINGS_BASE", str(DATA_DIR))


def _docker_ok() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        return True
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked docker are skipped only where no daemon answers; CI always has one."""
    if os.environ.get("CI"):
        return  # CI must run them: a missing daemon there is a failure, not a skip
    if any("docker" in item.keywords for item in items) and not _docker_ok():
        skip = pytest.mark.skip(reason="no Docker daemon (start dockerd; see README)")
        for item in items:
            if "docker" in item.keywords:
                item.add_marker(skip)
