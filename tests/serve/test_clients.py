"""Real clients against ``ossa serve``: the OpenAI Agents SDK and Codex CLI.

Codex is found as ``$OSSA_CODEX``, ``codex`` on PATH, or the npm package installed with
``bash scripts/install-codex.sh`` (into ``~/.cache/ossa/codex``); without it its test is skipped,
except under CI, where .ci/run installs it.
Codex runs with every non-loopback connection sent to a dead proxy, so a test never talks
to anything but the server under test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.serve.test_responses import weather_call

CODEX_CACHE = Path.home() / ".cache" / "ossa" / "codex" / "node_modules" / ".bin" / "codex"


def test_agents_sdk_runs_an_agent_with_a_function_tool(serve, harmony, monkeypatch):
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    agents = pytest.importorskip("agents")
    from openai import AsyncOpenAI

    agents.set_tracing_disabled(True)
    server = serve(weather_call("Paris"), harmony.final("Paris is sunny, 24C."))
    seen = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"sunny, 24C in {city}"

    model = agents.OpenAIResponsesModel(
        model="gpt-oss-test",
        openai_client=AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0),
    )
    agent = agents.Agent(
        name="weather", instructions="Answer with the tool.", tools=[get_weather], model=model
    )
    result = agents.Runner.run_sync(agent, "Weather in Paris?")
    assert seen == ["Paris"]
    assert result.final_output == "Paris is sunny, 24C."
    prompt = server.engine._encoding.decode(server.engine.prompts[1])
    assert "Answer with the tool." in prompt
    assert "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>" in prompt


def codex_binary() -> str | None:
    for candidate in (os.environ.get("OSSA_CODEX"), shutil.which("codex"), str(CODEX_CACHE)):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.mark.slow
def test_codex_exec_runs_a_shell_command_through_ossa_serve(serve, harmony, tmp_path):
    codex = codex_binary()
    if codex is None:
        missing = "Codex CLI not installed (bash scripts/install-codex.sh)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: .ci/run installs it")
        pytest.skip(missing)
    command = "echo ossa-was-here > proof.txt && cat proof.txt"
    shell_call = (
        "<|channel|>analysis<|message|>Write the file with the shell.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.exec_command <|constrain|>json"
        f"<|message|>{json.dumps({'cmd': command})}<|call|>"
    )
    server = serve(shell_call, harmony.final("Wrote proof.txt with the shell."))
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        'model = "gpt-oss-test"\n'
        'model_provider = "ossa"\n'
        "check_for_update_on_startup = false\n"
        "[model_providers.ossa]\n"
        'name = "ossa"\n'
        f'base_url = "{server.base_url}"\n'
        'wire_api = "responses"\n'
        "[analytics]\n"
        "enabled = false\n"
    )
    dead_proxy = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "CODEX_HOME": str(home),
        "HTTPS_PROXY": dead_proxy,
        "HTTP_PROXY": dead_proxy,
        "ALL_PROXY": dead_proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [codex, "exec", "--skip-git-repo-check", "--sandbox", "workspace-write", "-C", str(work)]
        + ["Write proof.txt"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (work / "proof.txt").read_text() == "ossa-was-here\n"
    assert done.stdout.strip() == "Wrote proof.txt with the shell."
    # Codex sent the shell's output back (store: false, the whole input again)
    prompt = server.engine._encoding.decode(server.engine.prompts[1])
    assert "<|start|>functions.exec_command to=assistant<|channel|>commentary<|message|>" in prompt
    assert "ossa-was-here" in prompt.rsplit("functions.exec_command to=assistant", 1)[1]
    assert (
        "namespace multi_agent_v1 {" in prompt
    )  # its namespace-grouped tools, as harmony has them
    # what Codex sent back was given its generated tokens: the engine's cache is reused
    engine = server.engine
    cached = engine.prompts[0] + engine._encoding.encode(shell_call, allowed_special="all")
    assert engine.prompts[1][: len(cached)] == cached
