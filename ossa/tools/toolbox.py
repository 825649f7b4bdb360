"""The toolbox: the agent's one entry point to every tool.

It puts each tool's namespace into the prompt (built-ins in the system message, functions
and MCP servers in the developer message) and routes each assistant message to the tool its
recipient names, tolerating the deviations gpt-oss is known for: ``functions.browser.search``
or ``functions.python`` for the built-ins, and a bare function name without ``functions.``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ossa.harmony import DeveloperContent, Message, SystemContent
from ossa.tools.base import AnswerFilter, Tool, tool_message
from ossa.tools.functions import FunctionTool, FunctionTools
from ossa.tools.plugins import BUILTIN_TOOLS, Plugins, builtin, discover

if TYPE_CHECKING:
    from ossa.tools.browser import BrowserTool

log = logging.getLogger(__name__)


class Toolbox:
    """Tools by namespace name; :meth:`call` answers any assistant message and never raises."""

    def __init__(self, tools: Iterable[Tool], *, refused: Sequence[str] = ()) -> None:
        self.tools: dict[str, Tool] = {}
        for t in tools:
            if t.name in self.tools:
                raise ValueError(f"two tools claim the namespace {t.name!r}")
            self.tools[t.name] = t
        #: Plugins that were found but refused, each with the reason.
        self.refused = list(refused)

    @property
    def browser(self) -> BrowserTool | None:
        return self.tools.get("browser")  # type: ignore[return-value]

    def system_content(self, base: SystemContent) -> SystemContent:
        """``base`` with the built-in namespaces (browser, python) the model was trained on."""
        for t in self.tools.values():
            if t.builtin:
                base = base.with_tools(t.namespace())
        return base

    def developer_content(self, base: DeveloperContent) -> DeveloperContent:
        """``base`` with the ``functions`` namespace and one namespace per MCP server."""
        for t in self.tools.values():
            if not t.builtin:
                base = base.with_tools(t.namespace())
        return base

    def answer_filter(self) -> AnswerFilters:
        """A fresh filter for one answer: every tool's, in order (none: the text unchanged)."""
        return AnswerFilters([f for t in self.tools.values() if (f := t.answer_filter())])

    def call(
        self, message: Message, progress: Callable[[str], None] | None = None
    ) -> list[Message]:
        """The tool messages answering ``message``; failures are tool messages too.

        With ``progress``, the tool reports output while it runs (:meth:`Tool.call_streaming`).
        """
        recipient = (message.recipient or "").strip()
        target, routed = self._route(recipient)
        if target is None:
            known = ", ".join(self._recipients()) or "none"
            text = f"Unknown recipient {recipient!r}: no such tool. Available tools: {known}."
            return [tool_message(message, text, author=recipient or "unknown")]
        if routed != message.recipient:
            message = message.with_recipient(routed)
        try:
            if progress is None:
                return target.call(message)
            return target.call_streaming(message, progress)
        except Exception as exc:  # a tool broke its contract; the model still gets an answer
            log.exception("tool %r raised", target.name)
            return [target.reply(message, f"Error: the {target.name} tool failed: {exc!r}")]

    def client_side(self, message: Message) -> bool:
        """Whether ``message`` calls a tool the API client runs (the turn ends with the call)."""
        target, _ = self._route((message.recipient or "").strip())
        return target is not None and target.client_side

    def interrupt(self) -> bool:
        """Stop whatever call is running in any tool (from another thread, e.g. the server
        whose client went away); whether one was stopped."""
        return any([t.interrupt() for t in self.tools.values()])

    def close(self) -> None:
        """Release every tool's resources (sandbox session, MCP server processes)."""
        for t in self.tools.values():
            try:
                t.close()
            except Exception:
                log.exception("closing tool %r", t.name)

    def __enter__(self) -> Toolbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _route(self, recipient: str) -> tuple[Tool | None, str]:
        namespace, _, rest = recipient.partition(".")
        functions = self.tools.get("functions")
        user_functions = functions.functions if isinstance(functions, FunctionTools) else {}
        if namespace == "functions":
            if rest not in user_functions and rest.partition(".")[0] in BUILTIN_TOOLS:
                return self._route(rest)  # functions.browser.search -> browser.search
            return functions, recipient
        if namespace in self.tools:
            return self.tools[namespace], recipient
        if recipient in user_functions:  # the model dropped the "functions." prefix
            return functions, f"functions.{recipient}"
        return None, recipient

    def _recipients(self) -> list[str]:
        names = []
        for t in self.tools.values():
            tools = t.namespace().tools
            names += [f"{t.name}.{d.name}" for d in tools] if tools else [t.name]
        return names


def build_toolbox(
    names: Iterable[str] | None = None,
    *,
    search_backend: Any = "ddgs",
    searxng_url: str | None = None,
    corpus_dir: str | None = None,
    allow_private_network: bool = False,
    sandbox_options: dict[str, Any] | None = None,
    functions: Iterable[FunctionTool | Callable[..., Any]] = (),
    mcp_servers: dict[str, Any] | None = None,
    plugins: bool = True,
) -> Toolbox:
    """A toolbox with the named tools, the given functions and the configured MCP servers.

    ``names`` picks among ``browser``, ``python`` and installed plugins (by entry-point name);
    None means all of them. The ``functions`` and ``mcp_servers`` given are always included.
    Nothing starts here: the sandbox opens on the first python call, an MCP server when its
    namespace or first call needs it.
    """
    found = discover() if plugins else Plugins()
    fns = [f if isinstance(f, FunctionTool) else FunctionTool(f) for f in functions]
    options: dict[str, dict[str, Any]] = {
        "browser": {
            "backend": search_backend,
            "searxng_url": searxng_url,
            "corpus_dir": corpus_dir,
            "allow_private_network": allow_private_network,
        },
        "python": {"sandbox_options": sandbox_options},
    }
    tools: list[Tool] = []
    if names is None:
        names = [*BUILTIN_TOOLS, *found.tools, *found.functions]
    for name in dict.fromkeys(names):
        if name in BUILTIN_TOOLS:
            tools.append(builtin(name, **options[name]))
        elif name in found.tools:
            tools.append(found.tools[name])
        elif name in found.functions:
            fns.append(found.functions[name])
        elif name not in {f.name for f in fns}:
            raise ValueError(_unknown_tool(name, found))
    if fns:
        tools.append(FunctionTools(fns))
    if mcp_servers:
        from ossa.tools.mcp import mcp_tools  # imported on use: the MCP SDK is slow to import

        tools += mcp_tools(mcp_servers)
    return Toolbox(tools, refused=found.refused)


def _unknown_tool(name: str, found: Plugins) -> str:
    reasons = [r for r in found.refused if r.startswith(f"plugin {name!r}")]
    if reasons:
        return f"tool {name!r} was refused: {reasons[0]}"
    available = [*BUILTIN_TOOLS, *found.tools, *found.functions]
    return f"unknown tool {name!r}; available: {', '.join(available)}"


class AnswerFilters:
    """Answer filters applied in order; what one holds back passes through the next on flush."""

    def __init__(self, filters: list[AnswerFilter]) -> None:
        self.filters = filters

    def feed(self, text: str) -> str:
        for f in self.filters:
            text = f.feed(text)
        return text

    def flush(self) -> str:
        text = ""
        for f in self.filters:
            text = f.feed(text) + f.flush()
        return text
