"""HTTP engine tests: recorded exchanges (recorded.py), and a real llama.cpp server's fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def ossa_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config and sessions under a fresh directory; no API key or host leaks in."""
    monkeypatch.setenv("OSSA_HOME", str(tmp_path / "home"))
    for name in list(os.environ):
        if (
            name.startswith("OSSA_")
            and name.endswith("API_KEY")
            or name in ("OSSA_CONFIG", "OLLAMA_HOST")
        ):
            monkeypatch.delenv(name)
    return tmp_path / "home"


@pytest.fixture(scope="session")
def llama_cpp() -> Path:
    """The cached llama.cpp build; skipped where absent, except under CI (there it must exist)."""
    from llama_server import llama_cpp_dir

    found = llama_cpp_dir()
    if found is None:
        message = "no llama.cpp build: run scripts/build-llama-server.sh (about ten minutes)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def tiny_gguf(llama_cpp: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ossa's tiny random gpt-oss checkpoint, converted by llama.cpp's own converter."""
    from llama_server import tiny_gguf

    return tiny_gguf(tmp_path_factory.mktemp("gguf"), llama_cpp)
