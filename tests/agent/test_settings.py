"""Settings: defaults, TOML file, OSSA_* variables, flags, and clear errors."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from ossa.agent.settings import (
    ConfigError,
    Settings,
    config_path,
    load_config,
    sessions_dir,
    to_toml,
)


def test_layers_override_in_order(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('model = "replay:x.jsonl"\neffort = "high"\nshow_reasoning = false\n')
    config = load_config(
        path, environ={"OSSA_EFFORT": "low", "OSSA_TOOLS": "browser", "OSSA_SEED": "7"}
    )
    assert config.model == "replay:x.jsonl"
    assert config.effort == "low"
    assert config.tools == ["browser"]
    assert config.seed == 7
    assert config.show_reasoning is False
    flagged = config.updated(effort="medium", tools=None)  # None: the flag was not given
    assert (flagged.effort, flagged.tools) == ("medium", ["browser"])


def test_mcp_servers_from_toml_and_env(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('[mcp_servers.notes]\ncommand = "python"\nargs = ["server.py"]\n')
    assert load_config(path, environ={}).mcp_servers == {
        "notes": {"command": "python", "args": ["server.py"]}
    }
    environ = {"OSSA_MCP_SERVERS": '{"web": {"url": "http://127.0.0.1:9/mcp"}}'}
    assert load_config(path, environ=environ).mcp_servers == {
        "web": {"url": "http://127.0.0.1:9/mcp"}
    }


def test_defaults_without_a_file(tmp_path: Path):
    assert load_config(tmp_path / "absent.toml", environ={}) == Settings()


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("colour = 1\n", {}, "unknown setting(s) colour"),
        ("effort = 'max'\n", {}, "effort must be one of"),
        ("max_steps = [\n", {}, "cannot read"),
        ("", {"OSSA_SHOW_REASONING": "maybe"}, "show_reasoning must be true or false"),
        (
            "",
            {"OSSA_MAX_STEPS": "lots"},
            "OSSA_MAX_STEPS: max_steps must be an integer, not 'lots'",
        ),
        ("", {"OSSA_DEVICE": "gpu"}, "OSSA_DEVICE: device must be auto, cpu or cuda"),
        ("temperature = -1\n", {}, "temperature must be 0 or more"),
        ("", {"OSSA_KV_DTYPE": "fp16"}, "OSSA_KV_DTYPE: kv_dtype must be one of bf16, fp32"),
        ("tools = 3\n", {}, "tools must be a list of names"),
    ],
)
def test_bad_settings_say_what_is_wrong(tmp_path: Path, text: str, environ: dict, message: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ=environ)
    assert message in str(raised.value)
    assert raised.value.exit_code == 2


def test_to_toml_is_valid_toml_that_loads_back_the_same(tmp_path: Path):
    default = to_toml(Settings())
    assert "null" not in default
    assert "# seed =" in default  # unset: commented out, not written as a value
    assert tomllib.loads(default) == {
        k: v for k, v in vars(Settings()).items() if v is not None and k != "mcp_servers"
    }
    settings = Settings().updated(
        instructions='Say "hi"\\ then\nstop \x7f ünïcode',
        seed=7,
        temperature=0.5,
        tools=[],
        corpus=str(tmp_path),
        mcp_servers={
            "notes": {"command": "python", "args": ["s.py"], "env": {"A B": "1"}},
            "web.search": {"url": "http://127.0.0.1:9/mcp"},
        },
    )
    path = tmp_path / "config.toml"
    path.write_text(to_toml(settings))
    assert load_config(path, environ={}) == settings


def test_local_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "demo.jsonl").write_text("")
    settings = Settings().updated(corpus="docs", model="replay:demo.jsonl")
    assert settings.corpus == str(tmp_path / "docs")
    assert settings.model == f"replay:{tmp_path / 'demo.jsonl'}"
    assert settings.search_backend == "local"  # a corpus without a backend means local search
    assert Settings().updated(model="openai/gpt-oss-20b").model == "openai/gpt-oss-20b"
    assert Settings().updated(model="docs").model == os.path.join(tmp_path, "docs")


def test_devices():
    assert Settings().device == "auto"
    for device in ("auto", "cpu", "cuda", "cuda:1"):
        assert Settings().updated(device=device).device == device
    with pytest.raises(ConfigError, match="device must be"):
        Settings().updated(device="tpu")


def test_ossa_home_holds_config_and_sessions(ossa_home: Path):
    assert config_path() == ossa_home / "config.toml"
    assert sessions_dir() == ossa_home / "sessions"
