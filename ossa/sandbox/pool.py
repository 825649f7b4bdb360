"""A warm pool: sessions started ahead of time, so taking one does not wait for a container.

Sessions are never reused: each taken session is fresh, and a background thread starts its
replacement. Closing the pool removes the sessions nobody took.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from ossa.sandbox.container import Limits
from ossa.sandbox.errors import SandboxError
from ossa.sandbox.session import Session, connect


class WarmPool:
    """Keeps `size` started sessions with the same limits ready to hand out."""

    def __init__(self, size: int = 2, **limits: Any) -> None:
        if size < 1:
            raise ValueError(f"pool size must be at least 1, not {size}")
        self.limits = Limits(**limits)
        connect(self.limits).close()  # fail now, not in the background, if Docker is unusable
        self._ready: queue.Queue[Session] = queue.Queue()
        self._wanted = threading.Semaphore(size)
        self._closed = threading.Event()
        self._error: SandboxError | None = None
        self._filler = threading.Thread(target=self._fill, daemon=True)
        self._filler.start()

    def session(self, timeout: float = 120.0) -> Session:
        """A started session, from the pool if one is ready; the caller must close it."""
        waited = 0.0
        while True:
            if self._closed.is_set():
                raise SandboxError("the pool is closed")
            try:
                session = self._ready.get(timeout=0.1)
            except queue.Empty:
                if self._error is not None:
                    raise self._error from None
                waited += 0.1
                if waited >= timeout:
                    raise SandboxError(
                        f"no pooled session was ready within {timeout:g} s"
                    ) from None
                continue
            self._wanted.release()
            return session

    def close(self) -> None:
        self._closed.set()
        self._wanted.release()  # wake the filler so it sees the pool is closed
        self._filler.join(timeout=60)
        while not self._ready.empty():
            self._ready.get_nowait().close()

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _fill(self) -> None:
        while True:
            self._wanted.acquire()
            if self._closed.is_set():
                return
            try:
                session = Session(self.limits).start()
            except Exception as exc:  # surfaced by the next `session()` call
                self._error = exc if isinstance(exc, SandboxError) else SandboxError(str(exc))
                return
            if self._closed.is_set():
                session.close()
                return
            self._ready.put(session)
