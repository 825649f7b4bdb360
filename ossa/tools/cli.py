"""`ossa tools`: show the tools exactly as the model sees them, and call them by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ossa.harmony import (
    DeveloperContent,
    Message,
    Role,
    SystemContent,
    ToolNamespaceConfig,
    load_harmony_encoding,
)
from ossa.tools.toolbox import Toolbox, build_toolbox

app = typer.Typer(no_args_is_help=True, help="List and call the agent's tools.")

SearchBackend = Annotated[
    str, typer.Option("--search-backend", help="Browser search: ddgs, searxng or local.")
]
SearxngUrl = Annotated[str | None, typer.Option("--searxng-url", help="SearXNG instance URL.")]
Corpus = Annotated[
    Path | None,
    typer.Option("--corpus", help="Local documents to search (implies --search-backend local)."),
]
PrivateNet = Annotated[
    bool, typer.Option("--allow-private-network", help="Let the browser open private addresses.")
]
McpConfig = Annotated[
    Path | None,
    typer.Option("--mcp", help='JSON file of MCP servers ({"mcpServers": {...}}).', exists=True),
]
Plugins = Annotated[bool, typer.Option("--plugins/--no-plugins", help="Load installed plugins.")]


def _toolbox(
    search_backend: str,
    searxng_url: str | None,
    corpus: Path | None,
    allow_private_network: bool,
    mcp: Path | None,
    plugins: bool,
) -> Toolbox:
    servers = _read_mcp_config(mcp) if mcp else None
    try:
        return build_toolbox(
            search_backend="local" if corpus else search_backend,
            searxng_url=searxng_url,
            corpus_dir=str(corpus) if corpus else None,
            allow_private_network=allow_private_network,
            mcp_servers=servers,
            plugins=plugins,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _read_mcp_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--mcp") from None
    if not isinstance(config, dict):
        raise typer.BadParameter(f"{path}: expected a JSON object", param_hint="--mcp")
    return config


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
def list_tools(
    search_backend: SearchBackend = "ddgs",
    searxng_url: SearxngUrl = None,
    corpus: Corpus = None,
    allow_private_network: PrivateNet = False,
    mcp: McpConfig = None,
    plugins: Plugins = True,
) -> None:
    """Each tool with the exact text the model sees for it in the prompt."""
    with _toolbox(search_backend, searxng_url, corpus, allow_private_network, mcp, plugins) as box:
        for t in box.tools.values():
            where = "system message (built-in)" if t.builtin else "developer message"
            typer.secho(f"=== {t.name}: {where}", bold=True)
            typer.echo(namespace_text(t.namespace(), builtin=t.builtin))
            typer.echo()
        for reason in box.refused:
            typer.secho(f"refused {reason}", fg="yellow", err=True)


@app.command("call")
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
    search_backend: SearchBackend = "ddgs",
    searxng_url: SearxngUrl = None,
    corpus: Corpus = None,
    allow_private_network: PrivateNet = False,
    mcp: McpConfig = None,
    plugins: Plugins = True,
) -> None:
    """Make the calls in order in one tool session and print what the model would receive."""
    if len(calls) % 2:
        raise typer.BadParameter(
            f"expected RECIPIENT ARGS pairs, got {len(calls)} arguments", param_hint="calls"
        )
    enc = load_harmony_encoding()
    answers = []
    with _toolbox(search_backend, searxng_url, corpus, allow_private_network, mcp, plugins) as box:
        for recipient, text in zip(calls[::2], calls[1::2], strict=True):
            replies = box.call(assistant_call(box, recipient, text))
            answers.append([m.to_dict() for m in replies])
            if not as_json:
                for m in replies:
                    typer.echo(enc.decode(enc.render(m)))
    if as_json:
        typer.echo(json.dumps(answers, ensure_ascii=False, indent=2))


def assistant_call(box: Toolbox, recipient: str, text: str) -> Message:
    """The assistant message gpt-oss sends: built-ins on analysis, everything else on commentary."""
    target = box.tools.get(recipient.split(".", 1)[0])
    channel = "analysis" if target is not None and target.builtin else "commentary"
    message = Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)
    return message.with_recipient(recipient)
