"""Agent settings: defaults, then a TOML file, then ``OSSA_*`` environment variables, then flags.

The file is ``config.toml`` in the platform's config directory (``ossa config show`` prints
where, and prints the settings in effect as TOML that can be pasted into it). ``OSSA_HOME``
moves both the config file and the data (sessions, downloads) under one directory, which is
what tests and portable installs want.

Every value goes through :meth:`Settings.updated`, whichever layer it comes from, so a
setting is converted and checked in one place and a bad one is reported with where it came
from (the file, ``OSSA_MAX_STEPS``, ``--effort``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from ossa.errors import UsageError

EFFORTS = ("low", "medium", "high")
#: The local engine's KV cache: bf16 halves its memory (keys and values rounded, logits move
#: by ~1e-3); fp32 matches an fp32 reference exactly.
KV_DTYPES = ("bf16", "fp32")


class ConfigError(UsageError):
    """A setting with a bad value, or a config file that cannot be read (exit status 2)."""


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
    #: ``auto`` picks CUDA when torch sees a GPU, else the CPU.
    device: str = "auto"
    dtype: str | None = None
    threads: int | None = None
    #: The local engine's KV cache element type, one of :data:`KV_DTYPES`.
    kv_dtype: str = "bf16"
    #: The bearer token for an HTTP engine's server (``OSSA_<SCHEME>_API_KEY`` overrides it).
    api_key: str | None = None
    search_backend: str = "ddgs"
    searxng_url: str | None = None
    #: A directory of local documents; stored absolute so a resumed session finds it anywhere.
    corpus: str | None = None
    allow_private_network: bool = False
    #: MCP servers by namespace, as in an ``mcpServers`` file: ``[mcp_servers.NAME]`` tables
    #: with ``command``/``args``/``env`` or ``url`` (``OSSA_MCP_SERVERS`` takes JSON).
    mcp_servers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def updated(self, **changes: Any) -> Settings:
        """A copy with the given settings; ``None`` values mean "not given" and are ignored.

        A corpus given without a search backend means the local backend. Raises
        :class:`ConfigError` naming the setting for a value of the wrong type or range.
        """
        given = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(given) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}")
        if "corpus" in given and "search_backend" not in given:
            given["search_backend"] = "local"
        try:
            coerced = {name: _coerce(name, value) for name, value in given.items()}
            return _validated(dataclasses.replace(self, **coerced))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


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


def env_name(setting: str) -> str:
    """The environment variable for a setting: ``max_steps`` is ``OSSA_MAX_STEPS``."""
    return f"OSSA_{setting.upper()}"


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (if it exists), then ``OSSA_<KEY>`` variables."""
    path = path or config_path()
    environ = dict(os.environ) if environ is None else environ
    settings = Settings()
    if path.exists():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        settings = _from(path, settings, table)
    for name in _FIELDS:
        if env_name(name) in environ:
            settings = _from(env_name(name), settings, {name: environ[env_name(name)]})
    return settings


def parse_tools(value: str | list[str]) -> list[str]:
    """``"browser,python"`` (or a list) to a list; an empty string (or ``none``) means no tools."""
    items = value.split(",") if isinstance(value, str) else value
    names = [str(item).strip() for item in items if str(item).strip()]
    return [] if names == ["none"] else names


def to_toml(settings: Settings) -> str:
    """The settings as ``config.toml`` text; unset values are commented out."""
    lines, tables = [], []
    for name in _FIELDS:
        value = getattr(settings, name)
        if name == "mcp_servers":
            if not value:
                lines.append("# mcp_servers: none ([mcp_servers.NAME] tables add them)")
            for server, table in value.items():
                tables += ["", f"[mcp_servers.{_toml_key(server)}]"]
                tables += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
        elif value is None:
            lines.append(f"# {name} =   (not set)")
        elif name == "api_key":  # a secret: say it is set, never print it
            lines.append(f"# {name} =   (set, not shown)")
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines + tables) + "\n"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _from(origin: object, settings: Settings, values: dict[str, Any]) -> Settings:
    """Apply one layer's values; an error names where the value came from."""
    try:
        return settings.updated(**values)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def _kind(name: str) -> str:
    """The field's base type name: ``int | None`` is ``int``, ``list[str]`` is ``list``."""
    return str(_FIELDS[name].type).split("|")[0].split("[")[0].strip()


def _coerce(name: str, value: Any) -> Any:
    """Turn strings (from the environment) and TOML values into the field's type, or say why not."""
    if name == "tools":
        if not isinstance(value, (str, list)):
            raise ValueError('tools must be a list of names or a string like "browser,python"')
        return parse_tools(value)
    kind = _kind(name)
    if isinstance(value, str) and kind != "str":
        value = _parse(name, kind, value.strip())
    expected = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
    expected |= {"list": (list,), "dict": (dict,)}
    if not isinstance(value, expected[kind]) or (kind in ("int", "float") and value is True):
        raise ValueError(f"{name} must be {_DESCRIBED[kind]}, not {value!r}")
    if kind == "float":
        value = float(value)
    if name in ("corpus", "model"):
        value = _absolute(name, value)
    return value


_DESCRIBED = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list",
    "dict": "a table",
}


def _parse(name: str, kind: str, text: str) -> Any:
    try:
        if kind == "bool" and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "dict":
            return json.loads(text)
    except ValueError:
        pass
    raise ValueError(f"{name} must be {_DESCRIBED[kind]}, not {text!r}")


def _absolute(name: str, value: str) -> str:
    """Local paths made absolute, so a session resumed from another directory finds them.

    The corpus is always a path; a model is one when it names an existing file or directory,
    itself or after a ``scheme:`` prefix (``replay:demo.jsonl``); a hub id stays as it is.
    """
    if name == "corpus":
        return os.path.abspath(os.path.expanduser(value))
    scheme, sep, rest = value.partition(":")
    if sep and rest and Path(rest).expanduser().exists():
        return f"{scheme}:{os.path.abspath(os.path.expanduser(rest))}"
    if not sep and Path(value).expanduser().exists():
        return os.path.abspath(os.path.expanduser(value))
    return value


def _validated(settings: Settings) -> Settings:
    if settings.effort not in EFFORTS:
        raise ValueError(f"effort must be one of {', '.join(EFFORTS)}, not {settings.effort!r}")
    if settings.max_steps < 1 or settings.max_tokens < 1:
        raise ValueError("max_steps and max_tokens must be at least 1")
    if not (math.isfinite(settings.temperature) and settings.temperature >= 0):
        raise ValueError(f"temperature must be 0 or more, not {settings.temperature!r}")
    if not 0 < settings.top_p <= 1:
        raise ValueError(f"top_p must be above 0 and at most 1, not {settings.top_p!r}")
    if not _DEVICE.fullmatch(settings.device):
        raise ValueError(f"device must be auto, cpu or cuda (cuda:N), not {settings.device!r}")
    if settings.kv_dtype not in KV_DTYPES:
        raise ValueError(
            f"kv_dtype must be one of {', '.join(KV_DTYPES)}, not {settings.kv_dtype!r}"
        )
    return settings


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    """A TOML value; JSON's string escapes are TOML's, except that TOML also escapes DEL."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise ValueError(f"cannot write {value!r} as TOML")
