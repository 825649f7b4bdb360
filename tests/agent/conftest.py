"""Fixtures for the agent tests: replay files, an isolated OSSA_HOME, the demo corpus."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CORPUS = EXAMPLES / "corpus"


@pytest.fixture(autouse=True)
def ossa_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config and sessions under a fresh directory; no OSSA_* settings leak in."""
    home = tmp_path / "home"
    monkeypatch.setenv("OSSA_HOME", str(home))
    for name in ("OSSA_CONFIG", "OSSA_MODEL", "OSSA_TOOLS", "OSSA_EFFORT"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def replay_file(tmp_path: Path) -> Callable[..., Path]:
    """Write completions (harmony text, one per model call) to a replay JSONL file."""
    counter = iter(range(1000))

    def write(*completions: str) -> Path:
        path = tmp_path / f"replay-{next(counter)}.jsonl"
        path.write_text("".join(json.dumps({"completion": c}) + "\n" for c in completions))
        return path

    return write


class Harmony:
    """Completion texts as gpt-oss writes them (the text after ``<|start|>assistant``)."""

    @staticmethod
    def final(text: str, reasoning: str = "Thinking.") -> str:
        """A completion that reasons briefly and answers."""
        return (
            f"<|channel|>analysis<|message|>{reasoning}<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{text}<|return|>"
        )

    @staticmethod
    def call(recipient: str, arguments: str, reasoning: str = "Use a tool.") -> str:
        """A completion that reasons briefly and calls a tool (JSON for browser, code for python)."""
        kind = "code" if recipient == "python" else "<|constrain|>json"
        return (
            f"<|channel|>analysis<|message|>{reasoning}<|end|>"
            f"<|start|>assistant<|channel|>analysis to={recipient} {kind}<|message|>{arguments}<|call|>"
        )


@pytest.fixture
def harmony() -> type[Harmony]:
    return Harmony
