"""Top-level agent commands: chat, run, batch, sessions, config."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ossa.agent import settings as cfgmod
from ossa.agent.engines import Engine, EngineError, SerializedEngine, open_engine
from ossa.agent.events import Event
from ossa.agent.loop import Agent
from ossa.agent.render import TerminalView, conversation_markdown, show_messages
from ossa.agent.results import EXIT_CODES, task_result
from ossa.agent.sessions import Session, SessionError, SessionStore
from ossa.agent.settings import ConfigError, Settings

# The same flags on chat, run and batch. ``None`` means "not given": config and env decide.
Model = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Hugging Face id, checkpoint dir, or replay:FILE."),
]
Effort = Annotated[str | None, typer.Option("--effort", "-e", help="low, medium or high.")]
Tools = Annotated[
    str | None,
    typer.Option("--tools", "-t", help='Comma-separated, e.g. "browser,python"; "" for none.'),
]
Instructions = Annotated[
    str | None, typer.Option("--instructions", "-i", help="Developer instructions.")
]
MaxSteps = Annotated[int | None, typer.Option("--max-steps", help="Model calls per turn.")]
MaxTokens = Annotated[int | None, typer.Option("--max-tokens", help="Generated tokens per turn.")]
SearchBackend = Annotated[
    str | None, typer.Option("--search-backend", help="Browser search: ddgs, searxng or local.")
]
Corpus = Annotated[
    Path | None,
    typer.Option("--corpus", help="Local documents to search (implies --search-backend local)."),
]
PrivateNet = Annotated[
    bool | None,
    typer.Option(
        "--allow-private-network/--no-private-network",
        help="Let the browser open private addresses.",
    ),
]

err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and tests


def register(app: typer.Typer) -> None:
    """Add the agent's commands to the top-level app."""
    app.command()(chat)
    app.command()(run)
    app.command()(batch)
    app.add_typer(sessions_app, name="sessions", help="List, show, resume and export sessions.")
    app.add_typer(config_app, name="config", help="Show the agent's configuration.")


# -- chat ---------------------------------------------------------------------------------


def chat(
    model: Model = None,
    effort: Effort = None,
    tools: Tools = None,
    instructions: Instructions = None,
    max_steps: MaxSteps = None,
    max_tokens: MaxTokens = None,
    show_reasoning: Annotated[
        bool | None,
        typer.Option("--show-reasoning/--hide-reasoning", help="Stream the reasoning dimmed."),
    ] = None,
    search_backend: SearchBackend = None,
    corpus: Corpus = None,
    allow_private_network: PrivateNet = None,
) -> None:
    """Chat with gpt-oss in the terminal (/help lists the slash commands)."""
    cfg = _config(
        model=model,
        effort=effort,
        tools=tools,
        instructions=instructions,
        max_steps=max_steps,
        max_tokens=max_tokens,
        show_reasoning=show_reasoning,
        search_backend=search_backend,
        corpus=corpus,
        allow_private_network=allow_private_network,
    )
    engine = _engine(cfg)
    toolbox = _toolbox(cfg)
    session = _store().create(_meta(cfg))
    _chat_loop(Agent(engine, toolbox, cfg, session=session), cfg)


HELP = """\
/effort [low|medium|high]  show or set the reasoning effort
/tools [a,b]               show or set the tools ("/tools none" for none)
/reasoning [on|off]        show or hide the streamed reasoning
/new                       start a new session
/save [FILE]               where the session is saved; with FILE, export it (.md or .json)
/help                      this help;  /exit or Ctrl-D leaves
Ctrl-C stops the answer or the running tool."""


def _chat_loop(agent: Agent, cfg: Settings) -> None:
    console = Console()
    view = TerminalView(console, show_reasoning=cfg.show_reasoning)
    read = _line_reader()
    console.print(
        f"[dim]ossa chat · {cfg.model} · effort {agent.effort} · tools "
        f"{','.join(cfg.tools) or 'none'} · session {agent.session.id} · /help[/dim]"
    )
    try:
        while True:
            try:
                line = read().strip()
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if not line:
                continue
            if line.startswith("/"):
                if _slash(line, agent, cfg, view, console) == "exit":
                    break
                continue
            drive(agent, line, view.show)
            view.close()
    finally:
        _close(agent.toolbox)


def _slash(line: str, agent: Agent, cfg: Settings, view: TerminalView, console: Console) -> str:
    name, _, arg = line.partition(" ")
    arg = arg.strip()
    if name in ("/exit", "/quit"):
        return "exit"
    if name == "/help":
        console.print(HELP)
    elif name == "/effort":
        if arg:
            if arg not in cfgmod.EFFORTS:
                console.print(f"[red]effort must be one of {', '.join(cfgmod.EFFORTS)}")
                return ""
            agent.reconfigure(effort=arg, toolbox=agent.toolbox)
            agent.session.update_meta(effort=arg)
        console.print(f"effort: {agent.effort}")
    elif name == "/tools":
        if arg:
            names = [] if arg == "none" else cfgmod.parse_tools(arg)
            try:
                toolbox = _toolbox(cfg.updated(tools=names), exit_on_error=False)
            except ValueError as exc:
                console.print(f"[red]{exc}")
                return ""
            _close(agent.toolbox)
            cfg.tools = names
            agent.reconfigure(effort=agent.effort, toolbox=toolbox)
            agent.session.update_meta(tools=names)
        console.print(f"tools: {','.join(cfg.tools) or 'none'}")
    elif name == "/reasoning":
        view.show_reasoning = {"on": True, "off": False}.get(arg, not view.show_reasoning)
        console.print(f"reasoning: {'shown' if view.show_reasoning else 'hidden'}")
    elif name == "/new":
        _close(agent.toolbox)  # a fresh browser page stack and python sandbox too
        agent.reset(
            session=_store().create(_meta(cfg, effort=agent.effort)),
            toolbox=_toolbox(cfg, exit_on_error=False),
        )
        console.print(f"new session {agent.session.id}")
    elif name == "/save":
        if arg:
            _export(agent.messages, Path(arg))
            console.print(f"exported to {arg}")
        console.print(f"session {agent.session.id} is saved as it goes: {agent.session.path}")
    else:
        console.print(f"[red]unknown command {name}; /help lists them")
    return ""


def _line_reader() -> Callable[[], str]:
    """prompt_toolkit with history on a terminal, plain lines from a pipe."""
    if not sys.stdin.isatty():
        return lambda: _read_stdin_line()
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    history = cfgmod.data_dir() / "history"
    history.parent.mkdir(parents=True, exist_ok=True)
    session: PromptSession[str] = PromptSession(history=FileHistory(str(history)))
    return lambda: session.prompt("› ")


def _read_stdin_line() -> str:
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def drive(agent: Agent, text: str, on_event: Callable[[Event], None]) -> list[Event]:
    """Run one turn, passing each event on; Ctrl-C interrupts the turn instead of killing it."""
    events: list[Event] = []
    stream = agent.run(text)
    while True:
        try:
            for event in stream:
                events.append(event)
                on_event(event)
            return events
        except KeyboardInterrupt:
            agent.interrupt()  # the loop stops at the next token or after the running tool


# -- run ----------------------------------------------------------------------------------


def run(
    task: Annotated[str, typer.Argument(help='The task; "-" reads it from standard input.')],
    model: Model = None,
    tools: Tools = None,
    effort: Effort = None,
    instructions: Instructions = None,
    max_steps: MaxSteps = None,
    max_tokens: MaxTokens = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON result object.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the work on stderr.")
    ] = False,
    search_backend: SearchBackend = None,
    corpus: Corpus = None,
    allow_private_network: PrivateNet = None,
) -> None:
    """Run one task, no prompts. Exit status: 0 completed, 1 error, 3 max steps, 4 max tokens, 130 Ctrl-C."""
    if task == "-":
        task = sys.stdin.read()
    cfg = _config(
        model=model,
        tools=tools,
        effort=effort,
        instructions=instructions,
        max_steps=max_steps,
        max_tokens=max_tokens,
        search_backend=search_backend,
        corpus=corpus,
        allow_private_network=allow_private_network,
    )
    engine = _engine(cfg)
    toolbox = _toolbox(cfg)
    session = _store().create(_meta(cfg))
    agent = Agent(engine, toolbox, cfg, session=session)
    view = (
        TerminalView(Console(stderr=True), show_reasoning=cfg.show_reasoning) if verbose else None
    )
    try:
        events = drive(agent, task, view.show if view else lambda event: None)
    finally:
        if view:
            view.close()
        _close(toolbox)
    result = task_result(events, agent.messages)
    result["session"] = session.id
    if json_output:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        if result["answer"]:
            typer.echo(result["answer"])
        for error in result["errors"]:
            err.print(f"[red]error ({error['kind']}): {error['message']}")
        if result["status"] != "completed":
            err.print(f"[yellow]status: {result['status']}")
    raise typer.Exit(EXIT_CODES[result["status"]])


# -- batch --------------------------------------------------------------------------------


def batch(
    tasks: Annotated[Path, typer.Argument(help='JSONL, one {"id": ..., "task": "..."} a line.')],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Results JSONL (appended; resumable).")
    ],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Tasks at a time.")
    ] = 1,
    model: Model = None,
    tools: Tools = None,
    effort: Effort = None,
    instructions: Instructions = None,
    max_steps: MaxSteps = None,
    max_tokens: MaxTokens = None,
    search_backend: SearchBackend = None,
    corpus: Corpus = None,
    allow_private_network: PrivateNet = None,
) -> None:
    """Run many tasks, one sandbox session each; ids already in OUTPUT are skipped."""
    cfg = _config(
        model=model,
        tools=tools,
        effort=effort,
        instructions=instructions,
        max_steps=max_steps,
        max_tokens=max_tokens,
        search_backend=search_backend,
        corpus=corpus,
        allow_private_network=allow_private_network,
    )
    todo = _read_tasks(tasks)
    done = _done_ids(output)
    pending = [(task_id, text) for task_id, text in todo if str(task_id) not in done]
    engine = SerializedEngine(_engine(cfg)) if pending else None
    writer = _ResultWriter(output)
    running: dict[Future[None], Agent] = {}
    with Progress(console=err) as progress, ThreadPoolExecutor(concurrency) as pool:
        bar = progress.add_task("tasks", total=len(todo), completed=len(todo) - len(pending))
        queue = list(reversed(pending))
        try:
            while queue or running:
                while queue and len(running) < concurrency:
                    task_id, text = queue.pop()
                    agent = _batch_agent(engine, cfg, task_id, text, writer)
                    if agent is None:
                        progress.advance(bar)
                    else:
                        running[pool.submit(_batch_task, agent, task_id, text, writer)] = agent
                if running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        running.pop(future)
                        future.result()
                        progress.advance(bar)
        except KeyboardInterrupt:
            queue.clear()
            for agent in running.values():
                agent.interrupt()  # interrupted tasks are not written: a rerun redoes them
            err.print("[yellow]interrupted; run the same command again to resume")
            raise typer.Exit(130) from None


def _batch_agent(
    engine: Engine, cfg: Settings, task_id: Any, text: Any, writer: _ResultWriter
) -> Agent | None:
    """An agent with its own toolbox (so its own sandbox session), or a written failure."""
    if not isinstance(text, str) or not text.strip():
        writer.write({"id": task_id, **_failed("task", 'the task line has no "task" text')})
        return None
    try:
        toolbox = _toolbox(cfg, exit_on_error=False)
    except ValueError as exc:
        writer.write({"id": task_id, **_failed("tools", str(exc))})
        return None
    return Agent(engine, toolbox, cfg)


def _batch_task(agent: Agent, task_id: Any, text: str, writer: _ResultWriter) -> None:
    try:
        events = list(agent.run(text))
    finally:
        _close(agent.toolbox)
    result = task_result(events, agent.messages)
    if result["status"] != "interrupted":
        writer.write({"id": task_id, **result})


def _failed(kind: str, message: str) -> dict[str, Any]:
    result = task_result([], [])
    result["errors"].append({"kind": kind, "message": message})
    return result


def _read_tasks(path: Path) -> list[tuple[Any, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        _fail(f"cannot read tasks: {exc}")
    tasks, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            task_id, text = record.get("id", f"line-{number}"), record.get("task")
        except (ValueError, AttributeError):
            _fail(f'{path}:{number}: not a JSON object like {{"id": 1, "task": "..."}}')
        if str(task_id) in seen:
            _fail(f"{path}:{number}: duplicate id {task_id!r}")
        seen.add(str(task_id))
        tasks.append((task_id, text))
    return tasks


def _done_ids(path: Path) -> set[str]:
    """Ids with a result already; a torn last line (a kill mid-write) is not a result."""
    if not path.exists():
        return set()
    done = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            done.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return done


class _ResultWriter:
    """Appends result lines from several threads, each flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            self._append("\n")  # keep the torn line apart from the next result

    def write(self, result: dict[str, Any]) -> None:
        with self.lock:
            self._append(json.dumps(result, ensure_ascii=False) + "\n")

    def _append(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


# -- sessions -----------------------------------------------------------------------------

sessions_app = typer.Typer(no_args_is_help=True)
SessionId = Annotated[str, typer.Argument(help='A session id, a unique prefix of one, or "last".')]


@sessions_app.command("list")
def sessions_list() -> None:
    """The stored sessions, oldest first."""
    table = Table("id", "model", "messages", "title")
    for transcript in _store():
        meta = transcript.meta
        table.add_row(
            meta.get("id", ""),
            str(meta.get("model", "")),
            str(len(transcript.messages)),
            transcript.title,
        )
    Console().print(table)


@sessions_app.command("show")
def sessions_show(
    session_id: SessionId,
    reasoning: Annotated[
        bool, typer.Option("--reasoning/--no-reasoning", help="Include the reasoning.")
    ] = True,
    prompt: Annotated[
        bool, typer.Option("--prompt", help="Print the exact prompt text the model would see next.")
    ] = False,
) -> None:
    """A session's conversation, or with --prompt the rendered harmony text."""
    transcript = _open_session(session_id).load()
    if prompt:
        from ossa.agent.context import Context
        from ossa.harmony import load_harmony_encoding

        encoding = load_harmony_encoding()
        tokens = Context(encoding, transcript.messages, transcript.tokens).render()
        typer.echo(encoding.decode(tokens))
        return
    show_messages(Console(), transcript.messages, show_reasoning=reasoning)
    if transcript.skipped_lines:
        err.print(f"[yellow]{transcript.skipped_lines} unreadable line(s) skipped")


@sessions_app.command("resume")
def sessions_resume(
    session_id: SessionId,
    model: Model = None,
    show_reasoning: Annotated[
        bool | None, typer.Option("--show-reasoning/--hide-reasoning")
    ] = None,
) -> None:
    """Continue a session in chat: the model sees exactly the conversation it had."""
    session = _open_session(session_id)
    transcript = session.load()
    meta = transcript.meta
    cfg = _config(
        model=model or meta.get("model"),
        effort=meta.get("effort"),
        tools=meta.get("tools"),
        instructions=meta.get("instructions"),
        search_backend=meta.get("search_backend"),
        corpus=meta.get("corpus"),
        allow_private_network=meta.get("allow_private_network"),
        show_reasoning=show_reasoning,
    )
    agent = Agent(
        _engine(cfg),
        _toolbox(cfg),
        cfg,
        session=session,
        messages=transcript.messages,
        tokens=transcript.tokens,
    )
    _chat_loop(agent, cfg)


@sessions_app.command("export")
def sessions_export(
    session_id: SessionId,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (.md or .json); default stdout.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="json (harmony) or md.")] = "json",
) -> None:
    """Export a session as harmony conversation JSON or as Markdown."""
    messages = _open_session(session_id).load().messages
    if output is not None:
        _export(messages, output)
    else:
        typer.echo(_exported(messages, fmt), nl=False)


def _export(messages: list, path: Path) -> None:
    path.write_text(_exported(messages, "md" if path.suffix == ".md" else "json"), encoding="utf-8")


def _exported(messages: list, fmt: str) -> str:
    if fmt == "md":
        return conversation_markdown(messages)
    if fmt == "json":
        return (
            json.dumps({"messages": [m.to_dict() for m in messages]}, indent=2, ensure_ascii=False)
            + "\n"
        )
    _fail(f"unknown format {fmt!r}: use json or md")


def _open_session(session_id: str) -> Session:
    try:
        return _store().open(session_id)
    except SessionError as exc:
        _fail(str(exc))


# -- config -------------------------------------------------------------------------------

config_app = typer.Typer(no_args_is_help=True)


@config_app.command("show")
def config_show() -> None:
    """The settings in effect (defaults < config file < OSSA_* variables) and where files live."""
    cfg = _config()
    path = cfgmod.config_path()
    typer.echo(f"# config file: {path}{'' if path.exists() else ' (not present)'}")
    typer.echo(f"# data dir:    {cfgmod.data_dir()}")
    for key, value in vars(cfg).items():
        typer.echo(f"{key} = {json.dumps(value)}")


# -- shared helpers -----------------------------------------------------------------------


def _config(**flags: Any) -> Settings:
    if flags.get("corpus") is not None:  # a corpus means the local backend unless told otherwise
        flags["corpus"] = str(flags["corpus"])
        flags["search_backend"] = flags.get("search_backend") or "local"
    try:
        return cfgmod.load_config().updated(**flags)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc), code=2)


def _engine(cfg: Settings) -> Engine:
    try:
        with err.status(f"loading {cfg.model}…"):
            return open_engine(cfg.model, device=cfg.device, dtype=cfg.dtype, threads=cfg.threads)
    except EngineError as exc:
        _fail(str(exc))


def _toolbox(cfg: Settings, *, exit_on_error: bool = True):
    if not cfg.tools and not cfg.mcp_servers:
        return None
    from ossa.tools import build_toolbox

    try:
        return build_toolbox(
            cfg.tools,
            search_backend=cfg.search_backend,
            searxng_url=cfg.searxng_url,
            corpus_dir=cfg.corpus,
            allow_private_network=cfg.allow_private_network,
            mcp_servers=cfg.mcp_servers or None,
        )
    except Exception as exc:  # unknown tool, bad corpus dir, bad backend: say so and stop
        if exit_on_error:
            _fail(f"cannot set up tools: {exc}")
        raise ValueError(str(exc)) from exc


def _close(toolbox: Any) -> None:
    if toolbox is not None:
        toolbox.close()


def _meta(cfg: Settings, **overrides: Any) -> dict[str, Any]:
    keys = (
        "model",
        "effort",
        "tools",
        "instructions",
        "search_backend",
        "corpus",
        "allow_private_network",
    )
    return {**{key: getattr(cfg, key) for key in keys}, **overrides}


def _store() -> SessionStore:
    return SessionStore(cfgmod.sessions_dir())


def _fail(message: str, *, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
