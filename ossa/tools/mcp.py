"""MCP servers as tool namespaces: each configured server's tools appear as ``NAME.tool``.

Configuration is a Claude-Desktop-style ``mcpServers`` mapping: ``{"name": {"command": ...,
"args": [...], "env": {...}}}`` for a stdio server or ``{"name": {"url": "http://..."}}`` for
streamable HTTP. The SDK is async, so each server's session lives on the tools' background
loop (:mod:`ossa.tools.aio`), held open by one task for as long as the server runs. A server
that dies mid-call becomes a tool message and is started again on the next call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from ossa.harmony import Message, ToolDescription, ToolNamespaceConfig
from ossa.tools import aio
from ossa.tools.arguments import ArgumentsError, parse_arguments, prompt_schema
from ossa.tools.base import Tool, message_text
from ossa.tools.plugins import BUILTIN_TOOLS

log = logging.getLogger(__name__)

RESERVED_NAMES = frozenset({*BUILTIN_TOOLS, "functions", "assistant", "user", "system"})
_NAME = re.compile(r"[A-Za-z0-9_-]+")


class MCPServerError(RuntimeError):
    """An MCP server could not be started; the text says why (with its last stderr lines)."""


class MCPServerTool(Tool):
    """One MCP server, rendered as its own namespace in the developer message."""

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        *,
        start_timeout: float = 60.0,
        call_timeout: float = 300.0,
    ) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"MCP server name {name!r}: use letters, digits, '_' or '-'")
        if name in RESERVED_NAMES:
            raise ValueError(
                f"MCP server name {name!r} is reserved; rename it in the configuration"
            )
        if not isinstance(config, dict) or not ("url" in config or "command" in config):
            raise ValueError(f"MCP server {name!r} needs a 'command' (stdio) or a 'url' (HTTP)")
        self.name = name
        self.config = config
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self._session: _Session | None = None
        self._listing: tuple[str | None, list[Any]] | None = None
        self._start_error: str | None = None

    def namespace(self) -> ToolNamespaceConfig:
        """The server's tools, as listed when it first started (starting it if need be)."""
        if self._listing is None and self._start_error is None:
            try:
                self._ensure_session()
            except MCPServerError as exc:
                self._start_error = str(exc)
                log.warning("MCP server %r did not start: %s", self.name, self._start_error)
        if self._listing is None:
            return ToolNamespaceConfig(
                name=self.name, description=f"Unavailable: {self._start_error}", tools=[]
            )
        instructions, tools = self._listing
        return ToolNamespaceConfig(
            name=self.name,
            description=instructions or None,
            tools=[
                ToolDescription.new(t.name, t.description or "", parameters=_parameters(t))
                for t in tools
            ],
        )

    def call(self, message: Message) -> list[Message]:
        tool_name = (message.recipient or "").removeprefix(f"{self.name}.")
        try:
            arguments = parse_arguments(message_text(message))
            session = self._ensure_session()
        except ArgumentsError as exc:
            return [self.reply(message, str(exc))]
        except MCPServerError as exc:
            return [self.reply(message, f"MCP server {self.name!r} is not running: {exc}")]
        known = [t.name for t in session.tools]
        if tool_name not in known:
            text = (
                f"Unknown tool {tool_name!r} on {self.name}. Tools: {', '.join(known) or 'none'}."
            )
            return [self.reply(message, text)]
        try:
            result = aio.run(session.call(tool_name, arguments, self.call_timeout))
        except Exception as exc:
            self._stop_session()
            text = (
                f"MCP server {self.name!r} failed during the call ({_describe(exc)}); "
                f"it will be restarted on the next call.{session.stderr_tail()}"
            )
            return [self.reply(message, text)]
        return [self.reply(message, _result_text(result))]

    def close(self) -> None:
        self._stop_session()

    def _ensure_session(self) -> _Session:
        if self._session is not None and not self._session.alive:
            self._stop_session()
        if self._session is None:
            session = _Session(self.config)
            try:
                aio.run(session.open(self.start_timeout))
            except Exception as exc:
                raise MCPServerError(_describe(exc) + session.stderr_tail()) from None
            self._session = session
            if self._listing is None:
                self._listing = (session.instructions, session.tools)
            self._start_error = None
        return self._session

    def _stop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                aio.run(session.close())
            except Exception as exc:  # the process is gone either way; nothing left to report
                log.debug("closing MCP server %r: %s", self.name, exc)


def mcp_tools(servers: dict[str, dict[str, Any]]) -> list[MCPServerTool]:
    """The namespaces for an ``mcpServers`` mapping (a ``{"mcpServers": ...}`` file is accepted)."""
    servers = servers.get("mcpServers", servers)
    return [MCPServerTool(name, config) for name, config in servers.items()]


class _Session:
    """A connected client, held open by one task on the background loop until closed."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.client: Client | None = None
        self.instructions: str | None = None
        self.tools: list[Any] = []
        # Lives as long as the session (closed in close()); read back to say why a server died.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def open(self, timeout: float) -> None:
        self._stop = asyncio.Event()
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
        except BaseException:
            self._task.cancel()
            raise

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        try:
            async with Client(self._transport()) as client:
                cursor = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    self.tools.extend(page.tools)
                    if not (cursor := page.next_cursor):
                        break
                self.client, self.instructions = client, client.instructions
                ready.set_result(None)
                await self._stop.wait()  # type: ignore[union-attr]
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.debug("MCP session ended: %s", exc)

    def _transport(self) -> Any:
        if "url" in self.config:
            return streamable_http_client(self.config["url"])
        params = StdioServerParameters(
            command=self.config["command"],
            args=[str(a) for a in self.config.get("args", [])],
            env={k: str(v) for k, v in self.config.get("env", {}).items()} or None,
            cwd=self.config.get("cwd"),
        )
        return stdio_client(params, errlog=self._stderr)

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> Any:
        assert self.client is not None
        return await asyncio.wait_for(self.client.call_tool(name, arguments), timeout)

    async def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            finally:
                self._stderr.close()

    def stderr_tail(self, lines: int = 5) -> str:
        """The server's last stderr lines, to say why it stopped."""
        try:
            self._stderr.seek(0)
            tail = self._stderr.read().strip().splitlines()[-lines:]
        except (OSError, ValueError):
            return ""
        return ("\nServer stderr:\n" + "\n".join(tail)) if tail else ""


def _parameters(tool: Any) -> dict[str, Any] | None:
    schema = prompt_schema(tool.input_schema or {})
    return schema if schema.get("properties") else None


def _result_text(result: Any) -> str:
    parts = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource" and getattr(block.resource, "text", None) is not None:
            parts.append(block.resource.text)
        elif kind in ("resource", "resource_link"):
            uri = getattr(block, "uri", None) or getattr(block.resource, "uri", "")
            parts.append(f"[resource: {uri}]")
        else:
            mime = getattr(block, "mime_type", None)
            parts.append(f"[{kind} content: {mime}]" if mime else f"[{kind} content]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts) or ("(the tool failed without a message)" if result.is_error else "")


def _describe(exc: BaseException) -> str:
    """The innermost error of an exception group, as one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
