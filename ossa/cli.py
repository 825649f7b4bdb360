"""The `ossa` command: each subpackage contributes its own sub-commands.

This is also the one place where a user-facing failure becomes output: code anywhere raises
:class:`ossa.errors.OssaError`, and the root command group turns it into one ``error:
<message>`` line on stderr and the error's exit status. Typer/click usage errors (an unknown
flag, a missing argument) keep click's own message and exit status 2. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

import ossa
from ossa.agent import cli as agent_cli
from ossa.errors import OssaError
from ossa.harmony import cli as harmony_cli
from ossa.model import cli as model_cli
from ossa.sandbox import cli as sandbox_cli
from ossa.serve import cli as serve_cli
from ossa.tools import cli as tools_cli


class _ErrorBoundary(TyperGroup):
    """The root group: every sub-command runs inside its ``invoke``, so one handler sees all."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OssaError as exc:
            typer.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


app = typer.Typer(
    name="ossa",
    cls=_ErrorBoundary,
    help="Run OpenAI's gpt-oss models as an agent with browser and python tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # plain click help: flags print as flags (rich help shows "<bool>" after each) and
    # every default is shown
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(harmony_cli.app, name="harmony", help="Render and parse the harmony format.")
app.add_typer(model_cli.app, name="model", help="Download and inspect gpt-oss checkpoints.")
app.add_typer(sandbox_cli.app, name="sandbox", help="Build and manage the python sandbox.")
app.add_typer(tools_cli.app, name="tools", help="List and call the agent's tools.")
agent_cli.register(app)
app.command()(serve_cli.serve)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ossa {ossa.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run OpenAI's gpt-oss models as an agent with browser and python tools."""


def main(argv: list[str] | None = None) -> None:
    """The ``ossa`` console script (and ``python -m ossa``)."""
    app(args=argv, prog_name="ossa")
