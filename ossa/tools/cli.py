"""`ossa tools`: show the tools exactly as the model sees them, and call them by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ossa import jsontext
from ossa.agent.cli.components import open_tools
from ossa.agent.cli.options import BROWSER, SettingFlags, setting_flags
from ossa.errors import UsageError
from ossa.harmony import (
    DeveloperContent,
    Message,
    Role,
    SystemContent,
    ToolNamespaceConfig,
    load_harmony_encoding,
)
from ossa.tools.toolbox import Toolbox

app = typer.Typer(no_args_is_help=True, help="List and call the agent's tools.")

McpConfig = Annotated[
    Path | None,
    typer.Option(
        "--mcp", help='JSON file of MCP servers ({"mcpServers": {...}}); replaces the config\'s.'
    ),
]
NoPlugins = Annotated[bool, typer.Option("--no-plugins", help="Do not load installed plugins.")]


def _toolbox(flags: SettingFlags, mcp: Path | None, no_plugins: bool) -> Toolbox:
    """Every tool, with the browser set up as the settings say (config, OSSA_*, flags)."""
    settings = flags.settings()
    if mcp is not None:
        settings = settings.updated(mcp_servers=_read_mcp_config(mcp))
    return open_tools(settings, None, plugins=not no_plugins)


def _read_mcp_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--mcp {path}: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"--mcp {path}: expected a JSON object")
    return config.get("mcpServers", config)


def namespace_text(namespace: ToolNamespaceConfig, *, builtin: bool) -> str:
    """The namespace's section of the system or developer message, rendered by harmony."""
    content: Any = (SystemContent.new() if builtin else DeveloperContent.new()).with_tools(
        namespace
    )
    role = Role.SYSTEM if builtin else Role.DEVELOPER
    enc = load_harmony_encoding()
    text = enc.decode(enc.render(Message.from_role_and_content(role, content)))
    text = text.split("# Tools\n\n", 1)[1].removesuffix("<|end|>")
    return text.split("\n\n# Valid channels", 1)[0]


@app.command("list")
@setting_flags(BROWSER)
def list_tools(
    mcp: McpConfig = None, no_plugins: NoPlugins = False, *, flags: SettingFlags
) -> None:
    """Each tool with the exact text the model sees for it in the prompt."""
    with _toolbox(flags, mcp, no_plugins) as box:
        for t in box.tools.values():
            where = "system message (built-in)" if t.builtin else "developer message"
            typer.secho(f"=== {t.name}: {where}", bold=True)
            typer.echo(namespace_text(t.namespace(), builtin=t.builtin))
            typer.echo()
        for reason in box.refused:
            typer.secho(f"refused {reason}", fg="yellow", err=True)


@app.command("call")
@setting_flags(BROWSER)
def call_tools(
    calls: Annotated[
        list[str],
        typer.Argument(
            metavar="RECIPIENT ARGS [RECIPIENT ARGS ...]",
            help="Recipient (browser.search, python, functions.NAME, SERVER.TOOL) and the text "
            "the model would send: JSON for the browser and functions, code for python.",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list: per call, its tool messages.")
    ] = False,
    mcp: McpConfig = None,
    no_plugins: NoPlugins = False,
    *,
    flags: SettingFlags,
) -> None:
    """Make the calls in order in one tool session and print what the model would receive."""
    if len(calls) % 2:
        raise UsageError(f"expected RECIPIENT ARGS pairs, got {len(calls)} arguments")
    enc = load_harmony_encoding()
    answers = []
    with _toolbox(flags, mcp, no_plugins) as box:
        pairs = list(zip(calls[::2], calls[1::2], strict=True))
        for recipient, text in pairs:
            _check_arguments(box, recipient, text)
        for recipient, text in pairs:
            replies = box.call(assistant_call(box, recipient, text))
            answers.append([m.to_dict() for m in replies])
            if not as_json:
                for m in replies:
                    typer.echo(enc.decode(enc.render(m)))
    if as_json:
        typer.echo(jsontext.dumps(answers, indent=2))


def _check_arguments(box: Toolbox, recipient: str, text: str) -> None:
    """A namespace that declares functions takes JSON (python, with none, takes code)."""
    target = box.tools.get(recipient.split(".", 1)[0])
    if target is None or not target.namespace().tools:
        return
    try:
        json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"the arguments for {recipient} are not valid JSON ({exc}): {text}"
        ) from None


def assistant_call(box: Toolbox, recipient: str, text: str) -> Message:
    """The assistant message gpt-oss sends: built-ins on analysis, everything else on commentary."""
    target = box.tools.get(recipient.split(".", 1)[0])
    channel = "analysis" if target is not None and target.builtin else "commentary"
    message = Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)
    return message.with_recipient(recipient)
