"""``ossa sessions``: list, show, resume, export and remove stored conversations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ossa import jsontext
from ossa.agent.cli.chat import Chat
from ossa.agent.cli.components import agent_tools, open_model, session_store, stderr
from ossa.agent.cli.export import Format, export_to, exported
from ossa.agent.cli.options import DISPLAY, MODEL, SettingFlags, setting_flags
from ossa.agent.loop import Agent
from ossa.agent.render import show_messages

app = typer.Typer(no_args_is_help=True)
SessionId = Annotated[str, typer.Argument(help='A session id, a unique prefix of one, or "last".')]


@app.command("list")
def sessions_list(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list, one object per session.")
    ] = False,
) -> None:
    """The stored sessions, oldest first."""
    summaries = [transcript.summary() for transcript in session_store()]
    if as_json:
        typer.echo(jsontext.dumps(summaries, indent=2))
        return
    table = Table("id", "model", "messages", "title")
    for summary in summaries:
        table.add_row(*(Text(str(summary[key])) for key in ("id", "model", "messages", "title")))
    Console().print(table)


@app.command("show")
def sessions_show(
    session_id: SessionId,
    no_reasoning: Annotated[
        bool, typer.Option("--no-reasoning", help="Leave the reasoning out.")
    ] = False,
    prompt: Annotated[
        bool, typer.Option("--prompt", help="Print the exact prompt text the model would see next.")
    ] = False,
) -> None:
    """A session's conversation, or with --prompt the rendered harmony text."""
    transcript = session_store().open(session_id).load()
    if prompt:
        from ossa.agent.context import Context
        from ossa.harmony import load_harmony_encoding

        encoding = load_harmony_encoding()
        tokens = Context(encoding, transcript.messages, transcript.tokens).render()
        typer.echo(encoding.decode(tokens))
        return
    show_messages(Console(), transcript.messages, show_reasoning=not no_reasoning)
    if transcript.skipped_lines:
        stderr.print(Text(f"{transcript.skipped_lines} unreadable line(s) skipped", "yellow"))


@setting_flags(MODEL, DISPLAY)
def sessions_resume(session_id: SessionId, *, flags: SettingFlags) -> None:
    """Continue a session in chat: the model sees exactly the conversation it had.

    The session's own settings (effort, tools, corpus...) apply; the flags given override them.
    """
    session = session_store().open(session_id)
    transcript = session.load()
    settings = flags.settings(under=transcript.meta)
    engine = open_model(settings)
    agent = Agent(
        engine,
        agent_tools(settings),
        settings,
        session=session,
        messages=transcript.messages,
        tokens=transcript.tokens,
    )
    chat = Chat(agent, settings)
    show_messages(chat.console, transcript.messages, show_reasoning=settings.show_reasoning)
    chat.run()


app.command("resume")(sessions_resume)


@app.command("export")
def sessions_export(
    session_id: SessionId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (folders are created); default stdout."),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="json (harmony conversation) or md; default: from the file's suffix, else json.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Export a session as harmony conversation JSON or as Markdown."""
    messages = session_store().open(session_id).load().messages
    if output is None:
        typer.echo(exported(messages, fmt or "json"), nl=False)
    else:
        stderr.print(Text(f"exported to {export_to(messages, output, fmt)}"))


@app.command("rm")
def sessions_rm(
    session_ids: Annotated[list[str], typer.Argument(help='Session ids, prefixes, or "last".')],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete sessions (asks first unless --yes)."""
    store = session_store()
    sessions = [store.open(session_id) for session_id in session_ids]  # all found, or none go
    names = ", ".join(session.id for session in sessions)
    if not yes and not typer.confirm(f"delete {len(sessions)} session(s): {names}?"):
        typer.echo("nothing deleted")
        return
    for session in sessions:
        store.remove(session.id)
        typer.echo(f"deleted {session.id}")
