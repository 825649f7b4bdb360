"""``ossa run``: one task, no prompts; the answer (or a JSON result) on stdout."""

from __future__ import annotations

import sys
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from ossa import jsontext
from ossa.agent.cli.components import (
    agent_tools,
    close,
    drive,
    open_model,
    session_meta,
    session_store,
    stderr,
)
from ossa.agent.cli.options import AGENT, BROWSER, MODEL, SettingFlags, setting_flags
from ossa.agent.loop import Agent
from ossa.agent.render import TerminalView
from ossa.agent.results import EXIT_CODES, failed_result, task_result
from ossa.agent.sanitize import strip_controls
from ossa.errors import OssaError, UsageError


@setting_flags(MODEL, AGENT, BROWSER)
def run(
    task: Annotated[
        str | None,
        typer.Argument(
            help='The task; "-" reads it from standard input. Piped input is added after it.',
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON result object, errors included.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the work on stderr.")
    ] = False,
    *,
    flags: SettingFlags,
) -> None:
    """Run one task, no prompts.

    Exit status: 0 completed, 1 error, 2 bad usage, 3 max steps, 4 max tokens, 130 Ctrl-C.
    """
    stage = "usage"  # what a failure before the turn is reported as in the JSON result
    try:
        settings = flags.settings()
        text = task_text(task, sys.stdin)
        stage = "model"
        engine = open_model(settings)
        stage = "session"
        session = session_store().create(session_meta(settings))
        stage = "tools"
        toolbox = agent_tools(settings)
    except OssaError as exc:
        if json_output:
            typer.echo(jsontext.dumps(failed_result(stage, str(exc))))
        raise
    agent = Agent(engine, toolbox, settings, session=session)
    view = TerminalView(Console(stderr=True), show_reasoning=settings.show_reasoning)
    if verbose:
        view.begin_turn()
    try:
        events = drive(agent, text, view.show if verbose else lambda event: None)
    finally:
        view.close()
        close(toolbox)
    result = task_result(events, agent.messages)
    result["session"] = session.id
    _report(result, json_output)
    raise typer.Exit(EXIT_CODES[result["status"]])


def task_text(task: str | None, stdin: IO[str]) -> str:
    """The task: the argument, then piped input after a blank line (``-``: stdin alone)."""
    if task == "-":
        text = stdin.read()
    else:
        piped = "" if stdin.isatty() else stdin.read()
        text = "\n\n".join(part for part in (task, piped) if part and part.strip())
    if not text.strip():
        raise UsageError('the task is empty: give it as an argument, or "-" to read stdin')
    return text


def _report(result: dict[str, Any], json_output: bool) -> None:
    if json_output:
        typer.echo(jsontext.dumps(result))
        return
    if result["answer"]:
        answer = result["answer"]
        typer.echo(strip_controls(answer) if sys.stdout.isatty() else answer)
    for error in result["errors"]:
        stderr.print(Text(f"error ({error['kind']}): {error['message']}", style="red"))
    if result["status"] != "completed":
        stderr.print(Text(f"status: {result['status']}", style="yellow"))
