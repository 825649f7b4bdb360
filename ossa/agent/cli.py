"""Top-level agent commands: chat, run, batch, sessions, config."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the agent's commands to the top-level app."""
