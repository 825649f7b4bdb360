"""``ossa config``: the settings in effect, as TOML that ``config.toml`` accepts."""

from __future__ import annotations

import typer

from ossa.agent import settings as settings_module

app = typer.Typer(no_args_is_help=True)


@app.command("show")
def config_show() -> None:
    """The settings in effect (defaults < config file < OSSA_* variables) and where files live."""
    path = settings_module.config_path()
    typer.echo(f"# config file: {path}{'' if path.exists() else ' (not present)'}")
    typer.echo(f"# data dir:    {settings_module.data_dir()}")
    typer.echo("# each setting can also be set as OSSA_<NAME>, e.g. OSSA_MAX_STEPS=30")
    typer.echo(settings_module.to_toml(settings_module.load_config()), nl=False)
