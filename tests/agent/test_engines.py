"""Engines: the replay engine, and a tiny random-weight checkpoint through the torch engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ossa.agent import cli, engines
from ossa.agent.engines import (
    EngineError,
    ReplayEngine,
    SerializedEngine,
    open_engine,
    schemes,
)
from ossa.agent.engines.local import open_local
from ossa.agent.loop import Agent
from ossa.agent.results import RESULT_SCHEMA
from ossa.agent.settings import Settings
from ossa.harmony import load_harmony_encoding


def test_replay_yields_through_the_stop_token_and_respects_max_tokens(replay_file):
    encoding = load_harmony_encoding()
    text = "<|channel|>final<|message|>Hi there<|return|><|start|>ignored"
    engine = ReplayEngine(replay_file(text, text))
    stop = encoding.stop_tokens_for_assistant_actions()
    tokens = list(engine.generate([1, 2, 3], stop=stop, max_tokens=100))
    assert encoding.decode(tokens) == "<|channel|>final<|message|>Hi there<|return|>"
    assert engine.stats.prefilled_tokens == 3
    assert len(list(engine.generate([1, 2, 3, 9], stop=stop, max_tokens=2))) == 2
    assert (engine.stats.reused_tokens, engine.stats.prefilled_tokens) == (3, 1)
    with pytest.raises(EngineError, match="all 2 recorded completions were used"):
        engine.generate([1], max_tokens=5)


def test_replay_file_errors_name_the_line(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"completion": "ok"}\n\nnot json\n')
    with pytest.raises(EngineError, match=r"bad.jsonl:3: expected"):
        open_engine(f"replay:{bad}")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(EngineError, match="no recorded completions"):
        open_engine(f"replay:{empty}")


def test_serialized_engine_reports_each_calls_own_usage(replay_file):
    shared = SerializedEngine(ReplayEngine(replay_file("<|return|>")))
    generation = shared.generate([5, 6], max_tokens=4)
    assert list(generation) == [
        load_harmony_encoding().encode("<|return|>", allowed_special="all")[0]
    ]
    assert generation.usage.prefilled_tokens == 2
    assert generation.usage.generated_tokens == 1


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ossa.model import synth

    return synth.write_checkpoint(tmp_path_factory.mktemp("tiny"), "tiny", layout="original")


@pytest.mark.parametrize(("kv_dtype", "expected"), [("bf16", "bfloat16"), ("fp32", "float32")])
def test_open_local_gives_the_cache_the_kv_dtype(tiny_checkpoint: Path, kv_dtype, expected):
    import torch

    engine = open_local(str(tiny_checkpoint), device="cpu", kv_dtype=kv_dtype)
    assert len(list(engine.generate([1, 2, 3], max_tokens=2))) == 2  # written, then read back
    dtypes = {t.dtype for layer in engine._cache for t in (layer.k, layer.v)}
    assert dtypes == {getattr(torch, expected)}


def test_open_local_refuses_an_unknown_kv_dtype_before_loading():
    with pytest.raises(EngineError, match="unknown KV cache dtype 'fp16'"):
        open_local("openai/gpt-oss-20b", kv_dtype="fp16")  # no download is tried


@pytest.mark.slow
def test_tiny_checkpoint_reuses_the_conversation_prefix(tiny_checkpoint: Path):
    engine = open_engine(str(tiny_checkpoint))
    agent = Agent(engine, settings=Settings(max_tokens=3, effort="low"))
    first = list(agent.run("hi"))
    assert first[-1].status == "max_tokens"  # random weights never stop on their own
    first_prompt = engine.stats.prefilled_tokens + engine.stats.reused_tokens
    second = list(agent.run("again"))
    usage = second[-2]
    assert usage.model_calls == 1
    assert usage.output_tokens == 3
    # the new prompt starts with the old one: at least the first turn's prompt is reused
    assert engine.stats.reused_tokens >= first_prompt
    assert usage.reused_tokens == engine.stats.reused_tokens


@pytest.mark.slow
def test_ossa_run_end_to_end_through_the_torch_engine(tiny_checkpoint: Path):
    import jsonschema

    app = typer.Typer()
    cli.register(app)
    args = [
        "run",
        "hi",
        "--model",
        str(tiny_checkpoint),
        "--tools",
        "",
        "--max-tokens",
        "3",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 4, result.output  # max_tokens
    data = json.loads(result.stdout)
    jsonschema.validate(data, RESULT_SCHEMA)
    assert data["usage"]["output_tokens"] == 3
    assert data["usage"]["prompt_tokens"] > 0


def test_serialized_engine_frees_the_engine_when_a_generation_is_closed(replay_file):
    shared = SerializedEngine(
        ReplayEngine(replay_file("<|channel|>final<|message|>a b c", "y", "x"))
    )
    first = shared.generate([1], max_tokens=10)
    next(first)
    first.close()  # an interrupt: the next caller must not wait for the abandoned stream
    unstarted = shared.generate([1], max_tokens=10)
    unstarted.close()
    assert len(list(shared.generate([1], max_tokens=10))) == 1


ENGINE_PLUGIN = '''
class Echo:
    """An engine plugin: remembers how it was opened."""

    context_length = 64

    def __init__(self, target, **options):
        self.target, self.options = target, options
'''

ENGINE_ENTRY_POINTS = """
[ossa.engines]
echo = ossa_test_engine:Echo
replay = ossa_test_engine:Echo
gone = ossa_test_engine_missing:thing
"""


@pytest.fixture
def installed_engine(tmp_path, monkeypatch):
    """An engine plugin installed as pip would leave it: a module and its dist-info."""
    (tmp_path / "ossa_test_engine.py").write_text(ENGINE_PLUGIN)
    info = tmp_path / "ossa_test_engine-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ossa-test-engine\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENGINE_ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("ossa_test_engine", None)


def test_a_plugin_engine_is_opened_by_its_scheme(installed_engine):
    engine = open_engine("echo:http://127.0.0.1:8080", device="cuda", threads=2)
    assert type(engine).__name__ == "Echo"
    assert engine.target == "http://127.0.0.1:8080"  # only the scheme is taken off
    assert engine.options == {"device": "cuda", "dtype": None, "threads": 2, "kv_dtype": "bf16"}
    assert schemes() == [*engines.ENGINES, "echo", "gone"]


def test_a_plugin_cannot_take_a_builtin_scheme_and_a_broken_one_says_so(
    installed_engine, replay_file
):
    assert isinstance(open_engine(f"replay:{replay_file('x')}"), ReplayEngine)
    with pytest.raises(EngineError, match=r"engine 'gone' \(ossa_test_engine_missing:thing\)"):
        open_engine("gone:x")


def test_a_spec_with_no_known_scheme_goes_to_the_local_engine(monkeypatch):
    monkeypatch.setattr(engines, "LOCAL", "tests.agent.test_engines:_local_stub")
    assert open_engine("C:/models/gpt-oss", dtype="bfloat16") == (
        "C:/models/gpt-oss",
        {"device": "cpu", "dtype": "bfloat16", "threads": None, "kv_dtype": "bf16"},
    )
    assert open_engine("openai/gpt-oss-20b")[0] == "openai/gpt-oss-20b"


def _local_stub(spec, **options):
    return spec, options
