"""The agent's commands: ``chat``, ``run``, ``batch``, ``sessions`` and ``config``.

One module per command (group); the flags they share are defined once in
:mod:`ossa.agent.cli.options`, and what they build from settings (engine, toolbox,
session store) in :mod:`ossa.agent.cli.components`. Errors are raised as
:class:`ossa.errors.OssaError` and reported by ``ossa.cli``.
"""

from __future__ import annotations

import typer

from ossa.agent.cli import config, sessions
from ossa.agent.cli.batch import batch
from ossa.agent.cli.chat import chat
from ossa.agent.cli.run import run


def register(app: typer.Typer) -> None:
    """Add the agent's commands to the top-level app."""
    app.command()(chat)
    app.command()(run)
    app.command()(batch)
    app.add_typer(
        sessions.app, name="sessions", help="List, show, resume, export and remove sessions."
    )
    app.add_typer(config.app, name="config", help="Show the agent's configuration.")


__all__ = ["register"]
