"""``ossa chat``: the terminal chat loop and its slash commands (``sessions resume`` uses it too)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from ossa.agent import settings as settings_module
from ossa.agent.cli.components import (
    agent_tools,
    close,
    drive,
    open_model,
    session_meta,
    session_store,
)
from ossa.agent.cli.export import export_to
from ossa.agent.cli.options import AGENT, BROWSER, DISPLAY, MODEL, SettingFlags, setting_flags
from ossa.agent.loop import Agent
from ossa.agent.render import TerminalView
from ossa.agent.settings import Settings, parse_tools
from ossa.errors import OssaError


@setting_flags(MODEL, AGENT, BROWSER, DISPLAY)
def chat(
    message: Annotated[
        str | None, typer.Argument(help="A first message to send.", show_default=False)
    ] = None,
    *,
    flags: SettingFlags,
) -> None:
    """Chat with gpt-oss in the terminal (/help lists the slash commands)."""
    settings = flags.settings()
    engine = open_model(settings)
    toolbox = agent_tools(settings)
    session = session_store().create(session_meta(settings))
    Chat(Agent(engine, toolbox, settings, session=session), settings).run(message)


HELP = """\
/effort [low|medium|high]  show or set the reasoning effort
/tools [a,b]               show or set the tools ("/tools none" for none)
/reasoning [on|off]        show or hide the streamed reasoning
/new                       start a new session
/save [FILE]               where the session is saved; with FILE, export it (.md or .json)
/help                      this help;  /exit or Ctrl-D leaves
Ctrl-C stops the answer or the running tool."""


class Chat:
    """Read lines, run turns, answer slash commands; the agent's session records everything."""

    def __init__(self, agent: Agent, settings: Settings) -> None:
        self.agent = agent
        self.settings = settings  # kept in step with /effort and /tools, for /new
        self.console = Console()
        self.view = TerminalView(self.console, show_reasoning=settings.show_reasoning)
        self.commands: dict[str, Callable[[str], None]] = {
            "/help": lambda arg: self.say(HELP),
            "/effort": self.effort,
            "/tools": self.tools,
            "/reasoning": self.reasoning,
            "/new": self.new,
            "/save": self.save,
        }

    def run(self, first: str | None = None) -> None:
        """The loop, until /exit or end of input; ``first`` is sent before the first prompt."""
        read = _line_reader()
        tools = ",".join(self.settings.tools) or "none"
        self.say(
            f"ossa chat · {self.settings.model} · effort {self.agent.effort} · tools {tools} · "
            f"session {self.agent.session.id} · /help",
            "dim",
        )
        try:
            if first and first.strip():
                self.turn(first)
            while True:
                try:
                    line = read().strip()
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                if line in ("/exit", "/quit"):
                    break
                if line.startswith("/"):
                    self.slash(line)
                elif line:
                    self.turn(line)
        finally:
            close(self.agent.toolbox)
            self.say(f"resume this chat with: ossa sessions resume {self.agent.session.id}", "dim")

    def turn(self, text: str) -> None:
        self.view.begin_turn()  # the spinner runs until the first token
        try:
            drive(self.agent, text, self.view.show)
        finally:
            self.view.close()  # restores the terminal even if the turn raised

    def say(self, text: str, style: str = "") -> None:
        """Print text as it is (no rich markup: ``[low|medium|high]`` must stay visible)."""
        self.console.print(Text(text, style=style))

    def slash(self, line: str) -> None:
        name, _, arg = line.partition(" ")
        command = self.commands.get(name)
        if command is None:
            self.say(f"unknown command {name}; /help lists them", "red")
            return
        try:
            command(arg.strip())
        except OssaError as exc:  # a bad argument ends the command, not the chat
            self.say(f"error: {exc}", "red")

    def effort(self, arg: str) -> None:
        if arg:
            self.settings = self.settings.updated(effort=arg)
            self.agent.reconfigure(effort=arg, toolbox=self.agent.toolbox)
            self.agent.session.update_meta(effort=arg)
        self.say(f"effort: {self.agent.effort}")

    def tools(self, arg: str) -> None:
        if arg:
            settings = self.settings.updated(tools=parse_tools(arg))
            toolbox = agent_tools(settings)
            close(self.agent.toolbox)
            self.settings = settings
            self.agent.reconfigure(effort=self.agent.effort, toolbox=toolbox)
            self.agent.session.update_meta(tools=settings.tools)
        self.say(f"tools: {','.join(self.settings.tools) or 'none'}")

    def reasoning(self, arg: str) -> None:
        shown = {"on": True, "off": False}.get(arg, not self.view.show_reasoning)
        self.view.show_reasoning = shown
        self.say(f"reasoning: {'shown' if shown else 'hidden'}")

    def new(self, arg: str) -> None:
        """A new session with a fresh browser page stack and python sandbox."""
        toolbox, old = agent_tools(self.settings), self.agent.toolbox
        self.agent.reset(
            session=session_store().create(session_meta(self.settings)), toolbox=toolbox
        )
        close(old)
        self.say(f"new session {self.agent.session.id}")

    def save(self, arg: str) -> None:
        if arg:
            self.say(f"exported to {export_to(self.agent.messages, Path(arg))}")
        session = self.agent.session
        self.say(f"session {session.id} is saved as it goes: {session.path}")


def _line_reader() -> Callable[[], str]:
    """prompt_toolkit with history on a terminal, plain lines from a pipe."""
    if not sys.stdin.isatty():
        return _read_stdin_line
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    history = settings_module.data_dir() / "history"
    try:
        history.parent.mkdir(parents=True, exist_ok=True)
        session: PromptSession[str] = PromptSession(history=FileHistory(str(history)))
    except OSError:  # an unwritable data dir costs the history, not the chat
        session = PromptSession()
    return lambda: session.prompt("› ")


def _read_stdin_line() -> str:
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line
