"""The agent commands: run, batch, sessions, config (in-process), chat (in a real terminal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pexpect
import pytest
import typer
from typer.testing import CliRunner

from ossa import cli
from ossa.agent.results import RESULT_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "examples" / "corpus"


@pytest.fixture
def app() -> typer.Typer:
    """The whole ``ossa`` command, with its error boundary."""
    return cli.app


def invoke(app: typer.Typer, *args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def test_run_json_matches_the_schema(app, replay_file, harmony):
    replay = replay_file(
        harmony.call("browser.search", '{"query": "harmony channels"}'),
        harmony.final("Three: analysis, commentary and final 【0†L2】."),
    )
    result = invoke(
        app, "run", "Which channels?", "--model", f"replay:{replay}", "--tools", "browser",
        "--corpus", str(CORPUS), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    jsonschema.validate(data, RESULT_SCHEMA)
    assert data["status"] == "completed"
    assert data["answer"].startswith("Three: analysis, commentary and final")
    assert [s["recipient"] for s in data["steps"]] == ["browser.search"]
    assert "harmony" in data["steps"][0]["output"].lower()
    assert data["messages"][0]["role"] == "system"
    assert data["usage"]["model_calls"] == 2


def test_run_prints_the_answer(app, replay_file, harmony):
    result = invoke(
        app, "run", "hi", "--model", f"replay:{replay_file(harmony.final('Hello!'))}", "--tools", ""
    )
    assert result.exit_code == 0
    assert result.stdout == "Hello!\n"


def test_run_reads_the_task_from_stdin(app, replay_file, harmony):
    replay = replay_file(harmony.final("ok"))
    result = invoke(
        app,
        "run",
        "-",
        "--model",
        f"replay:{replay}",
        "--tools",
        "",
        "--json",
        input="from stdin\n",
    )
    data = json.loads(result.stdout)
    assert data["messages"][1]["content"][0]["text"] == "from stdin\n"


def test_run_exit_codes_per_status(app, replay_file, harmony):
    search = harmony.call("browser.search", '{"query": "x"}')
    common = ["--tools", "browser", "--corpus", str(CORPUS), "--json"]
    steps = invoke(
        app,
        "run",
        "q",
        "--model",
        f"replay:{replay_file(search, search)}",
        "--max-steps",
        "1",
        *common,
    )
    assert steps.exit_code == 3
    assert json.loads(steps.stdout)["status"] == "max_steps"
    error = invoke(app, "run", "q", "--model", f"replay:{replay_file(search)}", *common)
    assert error.exit_code == 1
    data = json.loads(error.stdout)
    jsonschema.validate(data, RESULT_SCHEMA)
    assert data["status"] == "error"
    assert data["errors"][0]["kind"] == "engine"


def test_bad_input_gets_a_clear_error(app, tmp_path):
    bad_effort = invoke(app, "run", "q", "--effort", "extreme", "--model", "replay:x")
    assert bad_effort.exit_code == 2
    assert "effort must be one of low, medium, high" in bad_effort.output
    missing = invoke(app, "run", "q", "--model", f"replay:{tmp_path / 'nope.jsonl'}", "--tools", "")
    assert missing.exit_code == 1
    assert "cannot read replay file" in missing.output
    (tmp_path / "bad.jsonl").write_text('{"text": "no completion key"}\n')
    malformed = invoke(
        app, "run", "q", "--model", f"replay:{tmp_path / 'bad.jsonl'}", "--tools", ""
    )
    assert "bad.jsonl:1" in malformed.output
    unknown_tool = invoke(
        app, "run", "q", "--model", f"replay:{tmp_path / 'bad.jsonl'}", "--tools", "teleport"
    )
    assert unknown_tool.exit_code == 1


def test_batch_skips_done_ids_and_survives_a_torn_line(app, replay_file, harmony, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"id": i, "task": f"task {i}"}) + "\n" for i in (1, 2, 3)))
    results = tmp_path / "results.jsonl"
    # a previous run finished task 1 and was killed while writing task 2's line
    results.write_text(json.dumps({"id": 1, "status": "completed"}) + "\n" + '{"id": 2, "sta')
    replay = replay_file(harmony.final("answer A"), harmony.final("answer B"))
    out = invoke(
        app, "batch", str(tasks), "-o", str(results), "--model", f"replay:{replay}", "--tools", ""
    )
    assert out.exit_code == 0, out.output
    lines = results.read_text().splitlines()
    assert lines[1] == '{"id": 2, "sta'  # kept apart, not glued to a new record
    new = [json.loads(line) for line in lines[2:]]
    assert sorted(r["id"] for r in new) == [2, 3]
    for record in new:
        jsonschema.validate(record, RESULT_SCHEMA)
        assert record["answer"] in ("answer A", "answer B")
    again = invoke(app, "batch", str(tasks), "-o", str(results), "--model", "replay:/nonexistent")
    assert again.exit_code == 0  # nothing left to do: the engine is not even opened
    assert len(results.read_text().splitlines()) == len(lines)


def test_batch_bad_task_lines(app, replay_file, harmony, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a"}\n{"id": "b", "task": "fine"}\n')
    results = tmp_path / "out.jsonl"
    replay = f"replay:{replay_file(harmony.final('ok'))}"
    run = invoke(app, "batch", str(tasks), "-o", str(results), "--model", replay, "--tools", "")
    assert run.exit_code == 1  # task "a" failed
    records = {r["id"]: r for r in map(json.loads, results.read_text().splitlines())}
    assert records["a"]["status"] == "error"
    assert records["a"]["errors"][0]["kind"] == "task"
    assert records["b"]["answer"] == "ok"
    tasks.write_text('{"id": 1, "task": "x"}\nnot json\n')
    bad = invoke(app, "batch", str(tasks), "-o", str(tmp_path / "o2.jsonl"), "--model", replay)
    assert bad.exit_code == 1
    assert "tasks.jsonl:2: not a JSON object" in bad.output
    assert not (tmp_path / "o2.jsonl").exists()


def test_batch_runs_tasks_concurrently_with_one_toolbox_each(app, replay_file, harmony, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        "".join(json.dumps({"id": f"t{i}", "task": "search"}) + "\n" for i in range(3))
    )
    # calls interleave across tasks in any order, so every recorded completion is the same
    replay = replay_file(*[harmony.call("browser.search", '{"query": "gpt-oss"}')] * 6)
    results = tmp_path / "out.jsonl"
    out = invoke(
        app, "batch", str(tasks), "-o", str(results), "--model", f"replay:{replay}",
        "--tools", "browser", "--corpus", str(CORPUS), "--concurrency", "3", "--max-steps", "2",
    )  # fmt: skip
    assert out.exit_code == 1, out.output  # no task completed
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == ["t0", "t1", "t2"]
    for record in records:
        assert record["status"] == "max_steps"
        # each task has its own browser: its pages are numbered from 0
        assert [s["output"][:3] for s in record["steps"]] == ["[0]", "[1]"]


def test_sessions_list_show_export(app, replay_file, harmony, tmp_path):
    replay = replay_file(harmony.final("The **answer**.", "secret thoughts"))
    assert (
        invoke(app, "run", "What is it?", "--model", f"replay:{replay}", "--tools", "").exit_code
        == 0
    )
    listing = invoke(app, "sessions", "list")
    assert "What is it?" in listing.stdout
    shown = invoke(app, "sessions", "show", "last")
    assert "secret thoughts" in shown.stdout
    assert "answer" in shown.stdout
    hidden = invoke(app, "sessions", "show", "last", "--no-reasoning")
    assert "secret thoughts" not in hidden.stdout
    prompt = invoke(app, "sessions", "show", "last", "--prompt")
    assert prompt.stdout.rstrip().endswith("<|start|>assistant")
    assert "<|start|>user<|message|>What is it?<|end|>" in prompt.stdout
    exported = json.loads(invoke(app, "sessions", "export", "last").stdout)
    assert [m["role"] for m in exported["messages"]] == ["system", "user", "assistant", "assistant"]
    md = tmp_path / "s.md"
    invoke(app, "sessions", "export", "last", "-o", str(md))
    assert "## Assistant\n\nThe **answer**." in md.read_text()
    missing = invoke(app, "sessions", "show", "nope")
    assert missing.exit_code == 1
    assert "no session 'nope'" in missing.output


def test_sessions_resume_continues_the_conversation(app, replay_file, harmony):
    first = replay_file(harmony.final("first answer"))
    assert invoke(app, "run", "one", "--model", f"replay:{first}", "--tools", "").exit_code == 0
    second = replay_file(harmony.final("second answer"))
    out = invoke(app, "sessions", "resume", "last", "--model", f"replay:{second}", input="two\n")
    assert out.exit_code == 0, out.output
    assert "second answer" in out.stdout
    exported = json.loads(invoke(app, "sessions", "export", "last").stdout)
    texts = [m["content"][0].get("text") for m in exported["messages"][1:]]
    assert texts == ["one", "Thinking.", "first answer", "two", "Thinking.", "second answer"]


def test_config_file_env_and_flags(app, ossa_home, replay_file, harmony, monkeypatch):
    ossa_home.mkdir(parents=True, exist_ok=True)
    (ossa_home / "config.toml").write_text('effort = "high"\ntools = ["browser"]\nmax_steps = 7\n')
    monkeypatch.setenv("OSSA_MAX_STEPS", "9")
    shown = invoke(app, "config", "show").stdout
    assert 'effort = "high"' in shown
    assert 'tools = ["browser"]' in shown
    assert "max_steps = 9" in shown
    replay = replay_file(harmony.final("ok"))
    data = json.loads(
        invoke(
            app,
            "run",
            "q",
            "--model",
            f"replay:{replay}",
            "--effort",
            "low",
            "--tools",
            "",
            "--json",
        ).stdout
    )
    assert data["messages"][0]["content"][0]["reasoning_effort"] == "Low"
    (ossa_home / "config.toml").write_text("colour = 'red'\n")
    bad = invoke(app, "config", "show")
    assert bad.exit_code == 2
    assert "unknown setting(s) colour" in bad.output


def test_chat_slash_commands(app, replay_file, harmony, tmp_path):
    replay = replay_file(harmony.final("first", "hidden thought"), harmony.final("second"))
    saved = tmp_path / "chat.md"
    script = "\n".join(
        [
            "/reasoning off",
            "q1",
            "/tools none",
            "/effort extreme",
            "/new",
            "q2",
            f"/save {saved}",
            "/frobnicate",
            "/exit",
        ]
    )
    out = invoke(
        app,
        "chat",
        "--model",
        f"replay:{replay}",
        "--tools",
        "browser",
        "--corpus",
        str(CORPUS),
        input=script,
    )
    assert out.exit_code == 0, out.output
    assert "hidden thought" not in out.stdout
    assert "tools: none" in out.stdout
    assert "effort must be one of" in out.stdout
    assert "unknown command /frobnicate" in out.stdout
    assert out.stdout.count("new session") == 1
    exported = saved.read_text()
    assert "q2" in exported
    assert "q1" not in exported  # /new started over
    system = json.loads(invoke(app, "sessions", "export", "last").stdout)["messages"][0]
    assert not system["content"][0].get("tools")  # /tools none reached the system message
    listing = invoke(app, "sessions", "list").stdout
    assert "q1" in listing
    assert "q2" in listing


def test_chat_in_a_real_terminal(replay_file, harmony, ossa_home):
    replay = replay_file(
        harmony.call("browser.search", '{"query": "MXFP4 block"}', "Let me search."),
        harmony.final("A block has **32** weights 【0†L4】."),
    )
    env = {**os.environ, "OSSA_HOME": str(ossa_home), "COLUMNS": "100", "LINES": "40"}
    args = [
        "-c",
        "from ossa.cli import main; main()",
        "chat",
        "--model",
        f"replay:{replay}",
        "--tools",
        "browser",
        "--corpus",
        str(CORPUS),
    ]
    child = pexpect.spawn(
        sys.executable, args, env=env, encoding="utf-8", timeout=60, dimensions=(40, 100)
    )
    try:
        child.expect("›")
        child.sendline("/effort low")
        child.expect("effort: low")
        child.sendline("How big is an MXFP4 block?")
        child.expect("→ browser.search")
        child.expect("← browser.search")
        child.expect("32")
        child.expect("›")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


AGENT_CLI = "from ossa.cli import main; main()"


def test_batch_resumes_after_a_kill(replay_file, harmony, tmp_path, ossa_home):
    """Kill ``ossa batch`` while a task waits on a slow page; the rerun does only what is left."""
    arrived, release = threading.Event(), threading.Event()

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/slow":
                arrived.set()
                release.wait(30)
            body = b"<html><title>page</title><body>Forty-two.</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"id": i, "task": f"task {i}"}) + "\n" for i in (1, 2, 3)))
    results = tmp_path / "results.jsonl"

    def batch(*completions: str) -> list[str]:
        replay = replay_file(*completions)
        return [
            sys.executable, "-c", AGENT_CLI, "batch", str(tasks), "-o", str(results),
            "--model", f"replay:{replay}", "--tools", "browser", "--allow-private-network",
        ]  # fmt: skip

    def open_page(path: str) -> str:
        return harmony.call("browser.open", json.dumps({"id": f"{url}{path}"}))

    env = {**os.environ, "OSSA_HOME": str(ossa_home)}
    try:
        first = subprocess.Popen(
            batch(open_page("/fast"), harmony.final("one"), open_page("/slow"), harmony.final("never")),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert arrived.wait(60), "task 2 never reached the slow page"
        first.kill()
        first.wait()
        assert [json.loads(line)["id"] for line in results.read_text().splitlines()] == [1]

        release.set()
        second = subprocess.run(
            batch(open_page("/fast"), harmony.final("two"), harmony.final("three")),
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr
    finally:
        release.set()
        server.shutdown()
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["id"], r["answer"]) for r in records] == [(1, "one"), (2, "two"), (3, "three")]
    assert "Forty-two" in records[1]["steps"][0]["output"]


def test_ctrl_c_in_chat_stops_a_slow_tool_and_the_chat_goes_on(replay_file, harmony, ossa_home):
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):
            release.wait(30)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = json.dumps({"id": f"http://127.0.0.1:{server.server_port}/slow"})
    replay = replay_file(harmony.call("browser.open", page), harmony.final("Still here."))
    env = {**os.environ, "OSSA_HOME": str(ossa_home)}
    args = [
        "-c",
        AGENT_CLI,
        "chat",
        "--model",
        f"replay:{replay}",
        "--tools",
        "browser",
        "--allow-private-network",
    ]
    child = pexpect.spawn(
        sys.executable, args, env=env, encoding="utf-8", timeout=60, dimensions=(40, 100)
    )
    try:
        child.expect("›")
        child.sendline("open the slow page")
        child.expect("→ browser.open")
        child.sendintr()
        child.expect("interrupted this tool call")
        child.expect(r"turn ended: interrupted")
        child.sendline("are you there?")
        child.expect("Still here.")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        release.set()
        server.shutdown()
        child.close(force=True)
    assert child.exitstatus == 0
    session = next((ossa_home / "sessions").glob("*.jsonl"))
    roles = [
        r["message"]["role"]
        for r in map(json.loads, session.read_text().splitlines())
        if r["kind"] == "message"
    ]
    assert roles[-5:] == ["assistant", "tool", "user", "assistant", "assistant"]
