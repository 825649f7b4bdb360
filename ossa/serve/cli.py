"""``ossa serve``: run the API server (uvicorn) around one engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ossa.agent import settings as settings_module
from ossa.agent.cli.components import open_model
from ossa.agent.cli.options import AGENT, BROWSER, MODEL, SettingFlags, setting_flags
from ossa.errors import UsageError
from ossa.serve.limits import check_bind


@setting_flags(MODEL, AGENT, BROWSER)
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="OSSA_API_KEY",
            help="Key clients must send (Bearer); required off loopback.",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option("--store", help="SQLite file of stored responses.", show_default=False),
    ] = None,
    *,
    flags: SettingFlags,
) -> None:
    """Serve the agent over the OpenAI Responses and Chat Completions APIs."""
    import uvicorn

    from ossa.serve.app import BUILTINS, build_state, create_app

    settings = flags.settings()
    check_bind(host, api_key)
    unknown = [name for name in settings.tools if name not in BUILTINS]
    if unknown:
        raise UsageError(
            f"ossa serve runs only the built-in tools ({', '.join(BUILTINS)}), not "
            f"{', '.join(unknown)}; clients bring their own functions"
        )
    engine = open_model(settings)
    path = store or settings_module.data_dir() / "responses.sqlite3"
    state = build_state(engine, settings, store=path, api_key=api_key)
    typer.echo(f"ossa serve: {state.model_name} on http://{host}:{port}/v1", err=True)
    uvicorn.run(create_app(state), host=host, port=port, log_level="info", access_log=False)


__all__ = ["serve"]
