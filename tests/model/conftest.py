"""Tiny random checkpoints shared by the model tests (written once per session)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import ossa.model
from ossa.cli import app
from ossa.model import synth
from ossa.model.config import preset

# the tiny preset with an 8-token window and 4-token prefill chunks: rings wrap within a few tokens
RING = dataclasses.replace(preset("tiny"), sliding_window=8)


@pytest.fixture(scope="session")
def tiny_original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_checkpoint(tmp_path_factory.mktemp("tiny_o"), "tiny", layout="original")


@pytest.fixture(scope="session")
def tiny_transformers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_checkpoint(tmp_path_factory.mktemp("tiny_t"), "tiny", layout="transformers")


@pytest.fixture(scope="session")
def ring_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_checkpoint(tmp_path_factory.mktemp("ring"), RING, seed=3)


@pytest.fixture(scope="session")
def ring_transformers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_checkpoint(
        tmp_path_factory.mktemp("ring_t"), RING, layout="transformers", seed=3
    )


@pytest.fixture(scope="session")
def tiny_engine(tiny_original: Path) -> ossa.model.Engine:
    return ossa.model.load(tiny_original, dtype=torch.float32)


def random_tokens(n: int, seed: int = 0, vocab: int = 201088) -> list[int]:
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache under HF_HOME, offline: nothing here reaches the network.

    huggingface_hub reads its environment at import, so its constants are set as well.
    """
    from huggingface_hub import constants

    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return home


def cache_repo(home: Path, repo: str, files: dict[str, str], commit: str = "0" * 40) -> Path:
    """Put `files` (path -> text) into the HF cache as `repo`'s main revision; its snapshot."""
    folder = home / "hub" / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / commit
    for name, text in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_text(text)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    return snapshot


runner = CliRunner()


def invoke(*args: str, input: str | None = None):
    """`ossa model ARGS` through the real command line (its one error line and exit status)."""
    return runner.invoke(app, ["model", *args], input=input)
