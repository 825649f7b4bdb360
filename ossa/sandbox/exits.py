"""Sandbox containers end with the process that made them.

Docker keeps a container running after its owner is gone; the next start removes orphans, but
only once it runs and only from the owner's own PID namespace. So the containers of live
sessions are removed at interpreter exit, and on SIGTERM and SIGHUP, which by default end
Python with no clean-up at all: the handlers remove them first, then exit as the signal asked.
"""

from __future__ import annotations

import atexit
import signal
import threading
import weakref
from typing import Any

_live: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_installed = False


def track(session: Any) -> None:
    """Remove `session`'s container at exit unless it is closed first."""
    _live.add(session)


def install() -> None:
    """Register the exit hook once; the signal handlers only from the main thread, and only
    where the signal still has its default action (an application's own handler wins)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    atexit.register(remove_live_containers)
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(number) is signal.SIG_DFL:
                signal.signal(number, _on_signal)


def remove_live_containers() -> None:
    """Remove every tracked session's container, without waiting for any call in flight."""
    for session in list(_live):
        session._remove_container()


def _on_signal(number: int, _frame: object) -> None:
    remove_live_containers()
    raise SystemExit(128 + number)
