"""Fixtures for the server tests: ``ossa serve`` on 127.0.0.1, a random port, a replay engine."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ossa.agent.engines import ReplayEngine
from ossa.agent.settings import Settings
from ossa.serve import ServerState, build_state, create_app
from tests.agent.conftest import Harmony, ossa_home, replay_file  # noqa: F401 - fixtures


@dataclass
class Server:
    """A running server: its address, its shared state, the engine behind it."""

    url: str
    state: ServerState
    engine: Any

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@pytest.fixture
def harmony() -> type[Harmony]:
    return Harmony


@contextlib.contextmanager
def running(engine: Any, settings: Settings, store: Path, **options: Any) -> Iterator[Server]:
    """Serve ``engine`` on 127.0.0.1 (a port the OS picks) until the block ends."""
    state = build_state(engine, settings, store=store, model_name="gpt-oss-test", **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(state), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        threading.Event().wait(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", state, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def serve(tmp_path: Path, replay_file: Callable[..., Path]) -> Iterator[Callable[..., Server]]:  # noqa: F811
    """``serve(*completions, tools=[], **options)``: a server on a replay engine."""
    with contextlib.ExitStack() as stack:

        def start(*completions: str, tools: tuple[str, ...] = (), **options: Any) -> Server:
            engine = ReplayEngine(replay_file(*completions))
            settings = Settings(tools=list(tools), corpus=options.pop("corpus", None))
            if settings.corpus:
                settings = settings.updated(search_backend="local")
            store = options.pop("store", tmp_path / "responses.sqlite3")
            return stack.enter_context(running(engine, settings, store, **options))

        yield start
