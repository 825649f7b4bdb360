"""Agent settings: defaults, then a TOML file, then ``OSSA_*`` environment variables, then flags.

The file is ``config.toml`` in the platform's config directory (``ossa config show`` prints
where). ``OSSA_HOME`` moves both the config file and the data (sessions, downloads) under one
directory, which is what tests and portable installs want.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

EFFORTS = ("low", "medium", "high")
KNOWN_TOOLS = ("browser", "python")


class ConfigError(ValueError):
    """A setting with a bad value, or a config file that cannot be read."""


@dataclass
class Settings:
    """Everything the ``ossa`` agent commands can be told; field names are the TOML keys."""

    model: str = "openai/gpt-oss-20b"
    effort: str = "medium"
    tools: list[str] = field(default_factory=lambda: ["browser", "python"])
    instructions: str = ""
    show_reasoning: bool = True
    max_steps: int = 20
    max_tokens: int = 8192
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    device: str = "cpu"
    dtype: str | None = None
    threads: int | None = None
    search_backend: str = "ddgs"
    searxng_url: str | None = None
    corpus: str | None = None
    allow_private_network: bool = False
    #: MCP servers by namespace, as in an ``mcpServers`` file: ``[mcp_servers.NAME]`` tables
    #: with ``command``/``args``/``env`` or ``url`` (``OSSA_MCP_SERVERS`` takes JSON).
    mcp_servers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def updated(self, **changes: Any) -> Settings:
        """A copy with the given settings; ``None`` values mean "not given" and are ignored."""
        given = {k: v for k, v in changes.items() if v is not None}
        return _validated(dataclasses.replace(self, **{k: _coerce(k, v) for k, v in given.items()}))


def home() -> Path | None:
    """``OSSA_HOME`` if set: one directory holding config and data."""
    value = os.environ.get("OSSA_HOME")
    return Path(value).expanduser() if value else None


def config_path() -> Path:
    explicit = os.environ.get("OSSA_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = home() or Path(platformdirs.user_config_dir("ossa"))
    return base / "config.toml"


def data_dir() -> Path:
    return home() or Path(platformdirs.user_data_dir("ossa"))


def sessions_dir() -> Path:
    return data_dir() / "sessions"


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (if it exists), then ``OSSA_<KEY>`` variables."""
    path = path or config_path()
    environ = dict(os.environ) if environ is None else environ
    config = Settings()
    if path.exists():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        unknown = sorted(set(table) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        config = _checked(config.updated, path, **table)
    from_env = {
        name: environ[f"OSSA_{name.upper()}"]
        for name in _FIELDS
        if f"OSSA_{name.upper()}" in environ
    }
    return _checked(config.updated, "environment", **from_env)


def parse_tools(value: str | list[str]) -> list[str]:
    """``"browser,python"`` (or a list) to a list; an empty string means no tools."""
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip() for item in items if item.strip()]


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _checked(update: Any, origin: object, **values: Any) -> Settings:
    try:
        return update(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {exc}") from exc


def _coerce(name: str, value: Any) -> Any:
    """Turn strings from the environment (and TOML values) into the field's type."""
    kind = str(_FIELDS[name].type)
    if name == "tools":
        return parse_tools(value)
    if not isinstance(value, str) or kind.startswith("str"):
        return value
    if kind.startswith("bool"):
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"{name} must be true or false, not {value!r}")
    if kind.startswith("int"):
        return int(value)
    if kind.startswith("float"):
        return float(value)
    if kind.startswith("dict"):
        return json.loads(value)
    return value


def _validated(config: Settings) -> Settings:
    if config.effort not in EFFORTS:
        raise ValueError(f"effort must be one of {', '.join(EFFORTS)}, not {config.effort!r}")
    if config.max_steps < 1 or config.max_tokens < 1:
        raise ValueError("max_steps and max_tokens must be at least 1")
    if not isinstance(config.tools, list):
        raise ValueError("tools must be a list of names")
    if not isinstance(config.mcp_servers, dict):
        raise ValueError("mcp_servers must be a table of servers")
    return config
