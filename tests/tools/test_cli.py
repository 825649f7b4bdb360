"""`ossa tools list` and `ossa tools call`, run through the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ossa.cli import app
from ossa.harmony import ToolNamespaceConfig
from ossa.tools.cli import namespace_text

runner = CliRunner()
SERVER = str(Path(__file__).with_name("mcp_server.py"))


@pytest.fixture
def corpus(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nTides are caused by the moon's gravity.\n")
    return docs


def invoke(*args: str):
    return runner.invoke(app, ["tools", *args], catch_exceptions=False)


def test_list_shows_the_exact_prompt_text(corpus):
    result = invoke("list", "--no-plugins", "--corpus", str(corpus))
    assert result.exit_code == 0
    python_section = namespace_text(ToolNamespaceConfig.python(), builtin=True)
    assert python_section.startswith("## python\n\nUse this tool to execute Python code")
    assert "=== python: system message (built-in)\n" + python_section + "\n" in result.output
    assert "=== browser: system message (built-in)\n## browser\n\n// Tool for browsing." in (
        result.output
    )
    assert "type search = (_: {\nquery: string,\ntopn?: number, // default: 10\n" in result.output


def test_list_includes_mcp_namespaces(tmp_path):
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps({"mcpServers": {"calc": {"command": sys.executable, "args": [SERVER]}}})
    )
    result = invoke("list", "--no-plugins", "--mcp", str(config))
    assert result.exit_code == 0
    assert "=== calc: developer message\n## calc\n\n// Arithmetic for tests.\nnamespace calc {" in (
        result.output
    )


def test_call_runs_in_one_session_and_prints_harmony(corpus):
    result = invoke(
        "call", "--no-plugins", "--corpus", str(corpus),
        "browser.search", '{"query": "tides"}',
        "browser.open", '{"id": 0}',
    )  # fmt: skip
    assert result.exit_code == 0
    assert result.output.startswith(
        "<|start|>browser.search to=assistant<|channel|>analysis<|message|>"
    )
    assert "<|start|>browser.open to=assistant<|channel|>analysis<|message|>[1] Tides" in (
        result.output
    )


def test_call_json_gives_one_list_per_call(corpus):
    result = invoke(
        "call", "--json", "--no-plugins", "--corpus", str(corpus),
        "browser.search", '{"query": "moon"}',
        "browser.find", '{"pattern": "gravity"}',
        "calculator.add", "{}",
    )  # fmt: skip
    assert result.exit_code == 0
    calls = json.loads(result.output)
    assert [[m["name"] for m in replies] for replies in calls] == [
        ["browser.search"],
        ["browser.find"],
        ["calculator.add"],
    ]
    assert all(m["role"] == "tool" and m["recipient"] == "assistant" for r in calls for m in r)
    assert "gravity" in calls[1][0]["content"][0]["text"]
    assert calls[2][0]["content"][0]["text"].startswith("Unknown recipient 'calculator.add'")
    assert calls[2][0]["channel"] == "commentary"


def test_call_needs_pairs():
    result = invoke("call", "--no-plugins", "python")
    assert result.exit_code == 2
    assert "expected RECIPIENT ARGS pairs, got 1 arguments" in result.output


def test_bad_mcp_file_is_a_usage_error(tmp_path):
    config = tmp_path / "mcp.json"
    config.write_text("{not json")
    result = invoke("list", "--mcp", str(config))
    assert result.exit_code == 2
    assert "Expecting property name" in result.output


@pytest.mark.docker
def test_python_calls_share_one_sandbox_session():
    result = invoke("call", "--json", "--no-plugins", "python", "x = 20", "python", "x + 22")
    assert result.exit_code == 0
    assert json.loads(result.output)[1][0]["content"][0]["text"] == "42"


def test_call_with_invalid_json_is_refused_in_one_line(corpus):
    result = runner.invoke(
        app, ["tools", "call", "--no-plugins", "--corpus", str(corpus),
              "browser.search", '{"query": "tides"}', "browser.open", "{id: 0"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""  # refused before any call ran
    assert result.stderr.startswith("error: the arguments for browser.open are not valid JSON")
    assert result.stderr.count("\n") == 1


def test_tools_take_the_browser_settings_from_the_config(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("OSSA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OSSA_CORPUS", str(corpus))  # one settings path: config, OSSA_*, flags
    result = invoke("call", "--no-plugins", "browser.search", '{"query": "tides"}')
    assert result.exit_code == 0
    assert "Tides" in result.output
