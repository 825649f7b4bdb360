"""The `ossa` command: each subpackage contributes its own sub-commands."""

from __future__ import annotations

import typer

from ossa.agent import cli as agent_cli
from ossa.harmony import cli as harmony_cli
from ossa.model import cli as model_cli
from ossa.sandbox import cli as sandbox_cli
from ossa.tools import cli as tools_cli

app = typer.Typer(
    name="ossa",
    help="Run OpenAI's gpt-oss models as an agent with browser and python tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(harmony_cli.app, name="harmony", help="Render and parse the harmony format.")
app.add_typer(model_cli.app, name="model", help="Download and inspect gpt-oss checkpoints.")
app.add_typer(sandbox_cli.app, name="sandbox", help="Build and manage the python sandbox.")
app.add_typer(tools_cli.app, name="tools", help="List and call the agent's tools.")
agent_cli.register(app)


def main() -> None:
    app()
