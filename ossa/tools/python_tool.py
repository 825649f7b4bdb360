"""The built-in ``python`` tool: stateful code execution in the hardened sandbox.

gpt-oss was trained with a stateful Jupyter-like tool (harmony's built-in description:
120 s timeout, files under ``/mnt/data``), so one sandbox session serves the whole
conversation, opened on the first call. Replies read like a notebook cell's output: what the
code printed, then the last expression's value or the traceback (the sandbox words timeouts
and memory kills). Missing Docker or a dead sandbox becomes a message, never an exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ossa.harmony import Message, ToolNamespaceConfig
from ossa.sandbox import Limits, Result, SandboxError, SandboxUnavailable, Session, open_session
from ossa.tools.base import Tool, message_text

TRAINED_TIMEOUT = 120.0  # seconds, as harmony's built-in description says
NO_OUTPUT = (
    "[WARN] No output available. Use print() to output anything to stdout to receive the output"
)


class PythonTool(Tool):
    """``python``: the model sends raw code; one sandbox session per conversation."""

    name = "python"
    builtin = True

    def __init__(self, sandbox_options: dict[str, Any] | None = None) -> None:
        self.sandbox_options = dict(sandbox_options or {})
        # Checked now, so a bad option fails when the toolbox is built, not at the first call.
        self.timeout = Limits(**self.sandbox_options).timeout
        self._session: Session | None = None

    def namespace(self) -> ToolNamespaceConfig:
        """Harmony's stateful description, with the timeout changed only if it was configured."""
        config = ToolNamespaceConfig.python()
        if self.timeout != TRAINED_TIMEOUT:
            description = config.description.replace(
                f"{TRAINED_TIMEOUT} seconds", f"{self.timeout:g} seconds"
            )
            config = ToolNamespaceConfig(name=config.name, description=description, tools=[])
        return config

    def call(self, message: Message) -> list[Message]:
        return self._run(message, None)

    def call_streaming(self, message: Message, progress: Callable[[str], None]) -> list[Message]:
        """Run the cell, passing what it prints to ``progress`` as it prints it."""
        return self._run(message, progress)

    def _run(self, message: Message, progress: Callable[[str], None] | None) -> list[Message]:
        code = message_text(message)
        if not code.strip():
            return [self.reply(message, "No code received: send Python code as the message text.")]
        try:
            if self._session is None:
                self._session = open_session(**self.sandbox_options)
            result = self._session.run(code, on_output=progress)
        except SandboxUnavailable as exc:
            return [self.reply(message, f"The python tool is unavailable: {exc}")]
        except SandboxError as exc:
            self.close()
            text = (
                f"The Python sandbox failed: {exc}\n"
                "A new session starts with the next call; variables from earlier calls are gone."
            )
            return [self.reply(message, text)]
        return [self.reply(message, format_result(result))]

    def interrupt(self) -> bool:
        """Stop the running cell (Ctrl-C in a chat): safe from another thread or a signal
        handler. The call in flight then returns the cell's output so far and says it was
        interrupted; a cell that will not stop has its kernel restarted, and the reply says
        so. Returns whether a cell was running."""
        session = self._session
        return session is not None and session.interrupt()

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(SandboxError):  # already gone; orphans are removed later
                session.close()


def format_result(result: Result) -> str:
    """The cell's output as the model reads it (the sandbox words timeouts and memory kills)."""
    parts = [
        text.rstrip("\n")
        for text in (result.stdout, result.stderr, result.result, result.error)
        if text and text.strip()
    ]
    if result.restarted and not result.error:
        parts.append(
            "[NOTE] The Python session had stopped and was restarted: variables and imports "
            "from earlier calls are gone."
        )
    if result.truncated:
        parts.append("[NOTE] The output was too long; its middle was cut.")
    return "\n".join(parts) or NO_OUTPUT
