"""The flags that set :class:`~ossa.agent.settings.Settings`, each defined once, in groups.

A command takes groups with ``@setting_flags(MODEL, AGENT, BROWSER)`` and gets one
``flags: SettingFlags`` argument; ``flags.settings()`` builds the settings in effect:
defaults < config.toml < ``OSSA_*`` < the flags given. A flag's default in ``--help`` is the
built-in default, but only a flag actually typed on the command line overrides the config
file and the environment (click says where each value came from).

Settings are built inside the command, not before it, so that a command can report a bad
value its own way too (``ossa run --json`` writes it as a JSON result).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ossa.agent.settings import EFFORTS, KV_DTYPES, Settings, load_config

_DEFAULTS = Settings()
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Flag:
    """One command-line flag for the setting of the same name."""

    setting: str
    kind: type
    names: tuple[str, ...]
    help: str

    def parameter(self) -> inspect.Parameter:
        default = getattr(_DEFAULTS, self.setting)
        if self.setting == "tools":
            default = ",".join(default)
        if self.kind is Path:  # paths have no built-in default
            default = None
        shown = not (default is None or default == "" or default is False)
        option = typer.Option(*self.names, help=self.help, show_default=shown)
        return inspect.Parameter(
            self.setting,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=Annotated[self.kind if default is not None else self.kind | None, option],
        )


MODEL = (
    Flag("model", str, ("--model", "-m"), "Hugging Face id, checkpoint dir, or replay:FILE."),
    Flag("device", str, ("--device",), "auto (CUDA when torch sees a GPU), cpu or cuda."),
    Flag(
        "kv_dtype",
        str,
        ("--kv-dtype",),
        f"KV cache: {' or '.join(KV_DTYPES)}; bf16 halves its memory, fp32 is exact against an "
        "fp32 reference.",
    ),
    Flag("temperature", float, ("--temperature",), "Sampling temperature; 0 is greedy."),
    Flag("seed", int, ("--seed",), "Sampling seed, for repeatable runs."),
)
AGENT = (
    Flag("effort", str, ("--effort", "-e"), f"Reasoning effort: {', '.join(EFFORTS)}."),
    Flag("tools", str, ("--tools", "-t"), 'Comma-separated tools; "" or "none" for none.'),
    Flag("instructions", str, ("--instructions", "-i"), "Developer instructions."),
    Flag("max_steps", int, ("--max-steps",), "Model calls per turn."),
    Flag("max_tokens", int, ("--max-tokens",), "Generated tokens per turn."),
)
BROWSER = (
    Flag("search_backend", str, ("--search-backend",), "Browser search: ddgs, searxng or local."),
    Flag("searxng_url", str, ("--searxng-url",), "SearXNG instance URL."),
    Flag("corpus", Path, ("--corpus",), "Local documents to search (implies local search)."),
    Flag(
        "allow_private_network",
        bool,
        ("--allow-private-network",),
        "Let the browser open private and loopback addresses.",
    ),
)
DISPLAY = (
    Flag(
        "show_reasoning",
        bool,
        ("--show-reasoning/--hide-reasoning",),
        "Stream the reasoning, dimmed.",
    ),
)


@dataclass(frozen=True)
class SettingFlags:
    """The setting flags typed on the command line (by setting name)."""

    given: dict[str, Any]

    def settings(self, *, under: dict[str, Any] | None = None) -> Settings:
        """Defaults < config.toml < ``OSSA_*`` < ``under`` (a resumed session's) < these flags."""
        settings = load_config()
        if under:
            settings = settings.updated(**{k: v for k, v in under.items() if k in _SETTINGS})
        return settings.updated(**self.given)


_SETTINGS = set(vars(_DEFAULTS))


def setting_flags(*groups: tuple[Flag, ...]) -> Callable[[F], F]:
    """Add the groups' flags to a command, which receives them as ``flags: SettingFlags``."""
    flags = [flag for group in groups for flag in group]

    def decorate(command: F) -> F:
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.name != "flags"
        ]
        added = [flag.parameter() for flag in flags]

        @functools.wraps(command)
        def with_flags(*args: Any, flags_context: typer.Context, **kwargs: Any) -> Any:
            given = {}
            for flag in flags:
                value = kwargs.pop(flag.setting)
                source = flags_context.get_parameter_source(flag.setting)
                if source is not None and source.name == "COMMANDLINE":
                    given[flag.setting] = str(value) if isinstance(value, Path) else value
            return command(*args, flags=SettingFlags(given), **kwargs)

        context = inspect.Parameter(
            "flags_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context
        )  # typer passes the click context here: it says which values were typed
        parameters = [*own, *added, context]
        with_flags.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        with_flags.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_flags  # type: ignore[return-value]

    return decorate
