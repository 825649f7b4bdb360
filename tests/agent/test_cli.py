"""The agent commands: run, batch, sessions, config (in-process), chat (in a real terminal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pexpect
import pytest
import typer
from typer.testing import CliRunner

import ossa
from ossa import cli
from ossa.agent.cli import components
from ossa.agent.engines import ReplayEngine
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


# -- everyday CLI behaviour (issue 9) and one settings path (issue 11) ---------------------


def test_version_and_short_help(app):
    assert invoke(app, "--version").stdout == f"ossa {ossa.__version__}\n"
    for command in (["run"], ["chat"], ["batch"], ["sessions", "resume"], ["tools", "call"]):
        short = invoke(app, *command, "-h")
        assert short.exit_code == 0, short.output
        assert short.stdout == invoke(app, *command, "--help").stdout


@pytest.mark.parametrize(
    "command",
    [["run"], ["chat"], ["batch"], ["sessions", "resume"], ["sessions", "list"],
     ["sessions", "show"], ["tools", "call"], ["tools", "list"], ["sandbox", "build"]],
)  # fmt: skip
def test_help_shows_defaults_and_flags_as_flags(app, command):
    text = invoke(app, *command, "-h").stdout
    flat = " ".join(text.split())
    assert "--no-json" not in flat and "--no-force" not in flat and "--no-plugins /" not in flat
    assert "--no-private-network" not in flat and "--reasoning /" not in flat
    if command in (["run"], ["chat"], ["batch"]):
        for shown in (
            "--device",
            "[default: auto]",
            "[default: medium]",
            "--temperature",
            "--seed",
        ):
            assert shown in flat, (command, shown)


def test_browser_flags_are_one_definition(app):
    """``tools`` and the agent commands take the same browser flags, with the same defaults."""

    def browser_lines(*command: str) -> list[str]:
        flat = " ".join(invoke(app, *command, "-h").stdout.split())
        return [flat[flat.index(flag) :][:60] for flag in ("--search-backend", "--corpus")]

    assert browser_lines("tools", "list") == browser_lines("run") == browser_lines("batch")


class SpyEngine(ReplayEngine):
    """A replay engine that remembers how it was opened and the sampling it was asked for."""

    opened: list[dict] = []
    sampling: list[tuple] = []

    def generate(self, prompt, *, temperature=0.0, seed=None, **kwargs):
        SpyEngine.sampling.append((temperature, seed))
        return super().generate(prompt, temperature=temperature, seed=seed, **kwargs)


@pytest.fixture
def spy_engine(monkeypatch):
    SpyEngine.opened, SpyEngine.sampling = [], []

    def fake_open(spec, **kwargs):
        SpyEngine.opened.append(kwargs)
        return SpyEngine(Path(spec.removeprefix("replay:")))

    monkeypatch.setattr(components, "open_engine", fake_open)
    return SpyEngine


def test_device_temperature_and_seed_reach_the_engine(app, replay_file, harmony, spy_engine,
                                                      tmp_path, monkeypatch):  # fmt: skip
    model = f"replay:{replay_file(*[harmony.final('ok')] * 4)}"
    sampling = ["--device", "cpu", "--temperature", "0.7", "--seed", "5", "--tools", ""]
    assert invoke(app, "run", "q", "--model", model, *sampling).exit_code == 0
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": 1, "task": "q"}\n')
    out = tmp_path / "out.jsonl"
    assert (
        invoke(app, "batch", str(tasks), "-o", str(out), "--model", model, *sampling).exit_code == 0
    )
    assert invoke(app, "chat", "--model", model, *sampling, input="q\n").exit_code == 0
    resumed = invoke(app, "sessions", "resume", "last", "--model", model, "--device", "cuda:1",
                     input="q\n")  # fmt: skip
    assert resumed.exit_code == 0, resumed.output
    assert [o["device"] for o in spy_engine.opened] == ["cpu", "cpu", "cpu", "cuda:1"]
    assert spy_engine.sampling[:3] == [(0.7, 5)] * 3
    monkeypatch.setenv("OSSA_DEVICE", "cuda")
    assert invoke(app, "run", "q", "--model", model, "--tools", "").exit_code == 0
    assert spy_engine.opened[-1]["device"] == "cuda"
    monkeypatch.delenv("OSSA_DEVICE")
    assert invoke(app, "run", "q", "--model", model, "--tools", "").exit_code == 0
    assert spy_engine.opened[-1]["device"] == "auto"


def test_kv_dtype_defaults_to_bf16_and_file_env_and_flag_override_in_order(
    app, ossa_home, replay_file, harmony, spy_engine, monkeypatch
):
    model = f"replay:{replay_file(*[harmony.final('ok')] * 4)}"

    def opened_with(*flags: str) -> str:
        out = invoke(app, "run", "q", "--model", model, "--tools", "", *flags)
        assert out.exit_code == 0, out.output
        return spy_engine.opened[-1]["kv_dtype"]

    monkeypatch.delenv("OSSA_KV_DTYPE", raising=False)
    assert opened_with() == "bf16"
    ossa_home.mkdir(parents=True, exist_ok=True)
    (ossa_home / "config.toml").write_text('kv_dtype = "fp32"\n')
    assert opened_with() == "fp32"
    assert 'kv_dtype = "fp32"' in invoke(app, "config", "show").stdout
    monkeypatch.setenv("OSSA_KV_DTYPE", "bf16")
    assert opened_with() == "bf16"
    assert opened_with("--kv-dtype", "fp32") == "fp32"


@pytest.mark.parametrize("where", ["flag", "file", "env"])
def test_a_bad_kv_dtype_is_one_line_and_exit_2(app, ossa_home, replay_file, harmony, monkeypatch,
                                               where):  # fmt: skip
    model = f"replay:{replay_file(harmony.final('ok'))}"
    flags = ["--kv-dtype", "fp16"] if where == "flag" else []
    if where == "file":
        ossa_home.mkdir(parents=True, exist_ok=True)
        (ossa_home / "config.toml").write_text('kv_dtype = "fp16"\n')
    if where == "env":
        monkeypatch.setenv("OSSA_KV_DTYPE", "fp16")
    out = invoke(app, "run", "q", "--model", model, "--tools", "", *flags)
    assert out.exit_code == 2
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
    assert "kv_dtype must be one of bf16, fp32, not 'fp16'" in out.stderr


def test_a_typed_flag_beats_the_config_file_but_a_default_does_not(app, ossa_home, replay_file,
                                                                   harmony):  # fmt: skip
    ossa_home.mkdir(parents=True, exist_ok=True)
    (ossa_home / "config.toml").write_text('effort = "high"\n')
    replay = f"replay:{replay_file(harmony.final('ok'), harmony.final('ok'))}"
    efforts = []
    for flags in ([], ["--effort", "medium"]):
        out = invoke(app, "run", "q", "--model", replay, "--tools", "", "--json", *flags)
        efforts.append(json.loads(out.stdout)["messages"][0]["content"][0]["reasoning_effort"])
    assert efforts == ["High", "Medium"]


def test_chat_starts_with_the_message_given(app, replay_file, harmony):
    replay = replay_file(harmony.final("Hello there."))
    out = invoke(app, "chat", "hi from the command line", "--model", f"replay:{replay}",
                 "--tools", "", input="")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "Hello there." in out.stdout
    session = json.loads(invoke(app, "sessions", "list", "--json").stdout)[-1]
    assert session["title"] == "hi from the command line"
    assert f"ossa sessions resume {session['id']}" in out.stdout  # how to come back


def test_run_joins_piped_input_to_the_task(app, replay_file, harmony):
    replay = replay_file(harmony.final("ok"))
    out = invoke(app, "run", "Summarize this:", "--model", f"replay:{replay}", "--tools", "",
                 "--json", input="line one\nline two\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["messages"][1]["content"][0]["text"] == (
        "Summarize this:\n\nline one\nline two\n"
    )


@pytest.mark.parametrize(
    ("args", "code", "kind", "message"),
    [
        (["", "--model", "replay:x"], 2, "usage", "the task is empty"),
        (["   "], 2, "usage", "the task is empty"),
        (["q", "--effort", "extreme"], 2, "usage", "effort must be one of low, medium, high"),
        (["q", "--model", "replay:/nonexistent.jsonl"], 1, "model", "cannot read replay file"),
        (["q", "--model", "replay:{replay}", "--tools", "teleport"], 1, "tools", "unknown tool"),
        (["q", "--model", "replay:{replay}", "--search-backend", "bing"], 1, "tools", "bing"),
    ],
)
def test_run_json_writes_one_object_for_every_error(app, replay_file, harmony, args, code, kind,
                                                    message):  # fmt: skip
    replay = replay_file(harmony.final("ok"))
    args = [a.format(replay=replay) for a in args]
    out = invoke(app, "run", *args, "--json")
    assert out.exit_code == code
    data = json.loads(out.stdout)
    jsonschema.validate(data, RESULT_SCHEMA)
    assert data["status"] == "error"
    assert data["errors"][0]["kind"] == kind
    assert message in data["errors"][0]["message"]
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")
    plain = invoke(app, "run", *args)  # without --json: only the one line
    assert (plain.exit_code, plain.stdout) == (code, "")
    assert plain.stderr.startswith("error: ") and message in plain.stderr


def test_batch_counts_failures_and_a_rerun_retries_them(app, replay_file, harmony, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": 1, "task": "a"}\n{"id": 2, "task": "b"}\n{"id": 3}\n')
    results = tmp_path / "deep" / "results.jsonl"
    one_answer = replay_file(harmony.final("A"))  # task 2 finds the replay used up: an error
    first = invoke(app, "batch", str(tasks), "-o", str(results), "--model", f"replay:{one_answer}",
                   "--tools", "")  # fmt: skip
    assert first.exit_code == 1
    assert "3 task(s): 1 completed (0 in earlier runs), 2 failed (2, 3;" in first.stderr
    two_answers = replay_file(harmony.final("B"), harmony.final("never"))
    tasks.write_text('{"id": 1, "task": "a"}\n{"id": 2, "task": "b"}\n')
    second = invoke(app, "batch", str(tasks), "-o", str(results), "--model",
                    f"replay:{two_answers}", "--tools", "")  # fmt: skip
    assert second.exit_code == 0, second.output
    assert "2 task(s): 2 completed (1 in earlier runs), 0 failed" in second.stderr
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in records] == [
        (1, "completed"), (2, "error"), (3, "error"), (2, "completed")
    ]  # fmt: skip
    assert records[-1]["answer"] == "B"  # the latest line for an id is its result


def test_config_show_prints_valid_toml_and_bad_env_names_the_variable(app, ossa_home, monkeypatch):
    ossa_home.mkdir(parents=True, exist_ok=True)
    (ossa_home / "config.toml").write_text(
        'instructions = "Be \\"brief\\"."\n[mcp_servers.notes]\ncommand = "python"\n'
    )
    monkeypatch.setenv("OSSA_SEED", "3")
    shown = invoke(app, "config", "show")
    assert shown.exit_code == 0
    assert "null" not in shown.stdout
    table = tomllib.loads(shown.stdout)
    assert table["instructions"] == 'Be "brief".'
    assert table["seed"] == 3
    assert table["mcp_servers"] == {"notes": {"command": "python"}}
    assert "searxng_url" not in table  # unset: commented out
    monkeypatch.setenv("OSSA_MAX_STEPS", "lots")
    bad = invoke(app, "config", "show")
    assert bad.exit_code == 2
    assert bad.stderr == "error: OSSA_MAX_STEPS: max_steps must be an integer, not 'lots'\n"


def test_resume_uses_absolute_paths_and_shows_the_conversation(app, replay_file, harmony,
                                                               tmp_path, monkeypatch):  # fmt: skip
    monkeypatch.chdir(ROOT)
    first = replay_file(harmony.call("browser.search", '{"query": "MXFP4"}'), harmony.final("one"))
    ran = invoke(app, "run", "first question", "--model", f"replay:{first}", "--tools", "browser",
                 "--corpus", "examples/corpus")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    session = json.loads(invoke(app, "sessions", "list", "--json").stdout)[-1]
    meta = json.loads((tmp_path / "home" / "sessions" / f"{session['id']}.jsonl").read_text()
                      .splitlines()[0])  # fmt: skip
    assert meta["corpus"] == str(CORPUS)
    monkeypatch.chdir(tmp_path)  # elsewhere, the corpus is still found
    second = replay_file(harmony.call("browser.search", '{"query": "MXFP4"}'), harmony.final("two"))
    out = invoke(app, "sessions", "resume", "last", "--model", f"replay:{second}",
                 input="second question\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    earlier, now = out.stdout.split("ossa chat ·", 1)
    assert "first question" in earlier and "one" in earlier  # the earlier conversation
    assert "mxfp4" in now.lower() and "two" in now
    assert f"ossa sessions resume {session['id']}" in now


def test_sessions_list_json_and_rm(app, replay_file, harmony):
    for answer in ("a", "b"):
        replay = replay_file(harmony.final(answer))
        assert invoke(app, "run", f"task {answer}", "--model", f"replay:{replay}",
                      "--tools", "").exit_code == 0  # fmt: skip
    listed = json.loads(invoke(app, "sessions", "list", "--json").stdout)
    assert [s["title"] for s in listed] == ["task a", "task b"]
    assert listed[0]["messages"] == 4
    kept = invoke(app, "sessions", "rm", listed[0]["id"], input="n\n")
    assert kept.exit_code == 0 and "nothing deleted" in kept.stdout
    assert invoke(app, "sessions", "rm", listed[0]["id"], input="y\n").exit_code == 0
    assert invoke(app, "sessions", "rm", "last", "--yes").exit_code == 0
    assert json.loads(invoke(app, "sessions", "list", "--json").stdout) == []
    missing = invoke(app, "sessions", "rm", "nope", "--yes")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: no session 'nope'") and missing.stderr.count("\n") == 1


def test_help_in_chat_shows_the_argument_hints(app, replay_file, harmony):
    out = invoke(app, "chat", "--model", f"replay:{replay_file(harmony.final('x'))}",
                 "--tools", "", input="/help\n")  # fmt: skip
    assert "/effort [low|medium|high]" in out.stdout
    assert "/tools [a,b]" in out.stdout and "/reasoning [on|off]" in out.stdout


def test_save_and_export_expand_home_create_folders_and_honour_the_format(app, replay_file,
                                                                         harmony, tmp_path,
                                                                         monkeypatch):  # fmt: skip
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    replay = replay_file(harmony.final("The **answer**."))
    out = invoke(app, "chat", "--model", f"replay:{replay}", "--tools", "",
                 input="q\n/save ~/notes/chat.md\n/save /dev/null/x.md\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert (
        "## Assistant\n\nThe **answer**." in (tmp_path / "user" / "notes" / "chat.md").read_text()
    )
    assert "error: cannot write /dev/null/x.md" in out.stdout  # the chat went on
    target = tmp_path / "missing" / "dir"
    assert invoke(app, "sessions", "export", "last", "-o", str(target / "x.md")).exit_code == 0
    assert (target / "x.md").read_text().startswith("## User\n\nq")
    assert (
        invoke(app, "sessions", "export", "last", "-f", "md", "-o", str(target / "x.txt")).exit_code
        == 0
    )
    assert (target / "x.txt").read_text().startswith("## User\n\nq")
    assert (
        invoke(
            app, "sessions", "export", "last", "-f", "json", "-o", str(target / "y.md")
        ).exit_code
        == 0
    )
    assert json.loads((target / "y.md").read_text())["messages"][1]["role"] == "user"
    assert invoke(app, "sessions", "export", "last", "-f", "md").stdout.startswith("## User")
    blocked = invoke(app, "sessions", "export", "last", "-o", str(target / "x.md" / "y.md"))
    assert blocked.exit_code == 1
    assert blocked.stderr.startswith("error: cannot write") and blocked.stderr.count("\n") == 1


def test_python_m_ossa_reports_user_errors_in_one_line(ossa_home):
    env = {**os.environ, "OSSA_HOME": str(ossa_home), "PYTHONPATH": str(ROOT)}
    version = subprocess.run([sys.executable, "-m", "ossa", "--version"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert version.stdout == f"ossa {ossa.__version__}\n"
    missing = subprocess.run([sys.executable, "-m", "ossa", "sessions", "show", "nope"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no session 'nope'")
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    empty = subprocess.run([sys.executable, "-m", "ossa", "run", ""], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (empty.returncode, empty.stderr.count("\n")) == (2, 1)


def test_an_unwritable_data_dir_is_one_line(app, replay_file, harmony, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("OSSA_HOME", str(tmp_path / "file"))  # a file, not a directory
    replay = replay_file(harmony.final("ok"))
    out = invoke(app, "run", "q", "--model", f"replay:{replay}", "--tools", "", "--json")
    assert out.exit_code == 1
    assert json.loads(out.stdout)["errors"][0]["kind"] == "session"
    assert (
        out.stderr.startswith("error: cannot create a session in") and out.stderr.count("\n") == 1
    )
