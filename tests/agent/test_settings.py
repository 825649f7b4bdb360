"""Settings: defaults, TOML file, OSSA_* variables, flags, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ossa.agent.settings import ConfigError, Settings, config_path, load_config, sessions_dir


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
        ("", {"OSSA_MAX_STEPS": "lots"}, "environment"),
    ],
)
def test_bad_settings_say_what_is_wrong(tmp_path: Path, text: str, environ: dict, message: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path, environ=environ)


def test_ossa_home_holds_config_and_sessions(ossa_home: Path):
    assert config_path() == ossa_home / "config.toml"
    assert sessions_dir() == ossa_home / "sessions"
