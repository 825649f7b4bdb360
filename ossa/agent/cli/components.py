"""What the agent commands build from settings: the engine, the toolbox, the session store.

Each builder raises :class:`~ossa.errors.OssaError` with one line a user can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ossa.agent import settings as settings_module
from ossa.agent.engines import Engine, open_engine
from ossa.agent.events import Event
from ossa.agent.loop import Agent
from ossa.agent.sessions import SessionStore
from ossa.agent.settings import Settings
from ossa.errors import OssaError

if TYPE_CHECKING:
    from ossa.tools import Toolbox

#: Status lines and errors; soft wrap keeps a line whole for grep and tests.
stderr = Console(stderr=True, soft_wrap=True)

#: The settings a session's ``meta`` record keeps: what defines the conversation, so that
#: ``ossa sessions resume`` continues it as it was (the device and sampling are the machine's).
SESSION_SETTINGS = (
    "model",
    "effort",
    "tools",
    "instructions",
    "search_backend",
    "searxng_url",
    "corpus",
    "allow_private_network",
)


def open_model(settings: Settings) -> Engine:
    """The engine for ``settings.model`` on ``settings.device``."""
    with stderr.status(f"loading {settings.model}…"):  # an EngineError is an OssaError
        return open_engine(
            settings.model,
            device=settings.device,
            dtype=settings.dtype,
            threads=settings.threads,
            kv_dtype=settings.kv_dtype,
        )


def agent_tools(settings: Settings) -> Toolbox | None:
    """The agent's toolbox, or None when it has no tools."""
    if not settings.tools and not settings.mcp_servers:
        return None
    return open_tools(settings, settings.tools)


def open_tools(settings: Settings, names: list[str] | None, *, plugins: bool = True) -> Toolbox:
    """A toolbox with the named tools (None: every tool) set up as ``settings`` say."""
    from ossa.tools import build_toolbox  # the tools stack is slow to import

    try:
        return build_toolbox(
            names,
            search_backend=settings.search_backend,
            searxng_url=settings.searxng_url,
            corpus_dir=settings.corpus,
            allow_private_network=settings.allow_private_network,
            mcp_servers=settings.mcp_servers or None,
            plugins=plugins,
        )
    except ValueError as exc:  # an unknown tool, a bad corpus dir or search backend
        raise OssaError(f"cannot set up tools: {exc}") from exc


def close(toolbox: Toolbox | None) -> None:
    if toolbox is not None:
        toolbox.close()


def session_store() -> SessionStore:
    return SessionStore(settings_module.sessions_dir())


def session_meta(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in SESSION_SETTINGS}


def drive(agent: Agent, text: str, on_event: Callable[[Event], None]) -> list[Event]:
    """Run one turn, passing each event on; Ctrl-C interrupts the turn instead of killing it."""
    events: list[Event] = []
    stream = agent.run(text)
    while True:
        try:
            for event in stream:
                events.append(event)
                on_event(event)
            return events
        except KeyboardInterrupt:
            agent.interrupt()  # the loop stops at the next token or after the running tool
