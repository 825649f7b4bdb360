"""A private event loop in a background thread, behind the tools' synchronous ``call``.

Async function tools and the MCP SDK need an event loop, while the agent calls tools from
plain synchronous code (which may itself run inside someone else's loop, as in a notebook).
One daemon thread per process runs a loop that outlives any single call, so an MCP session
opened in one call is still alive in the next.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="ossa-tools-loop", daemon=True).start()
        return _loop


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the background loop and wait for its result (or raise its exception)."""
    future = asyncio.run_coroutine_threadsafe(coro, _background_loop())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise
