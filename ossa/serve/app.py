"""The ASGI application: routes, the API key check, and errors as OpenAI error objects.

Every refusal (a bad body, an unknown route, a missing key) is an ``{"error": {...}}``
object with a 4xx status; a bug is a 500 with the same shape, its traceback only in the
server's log. Idle conversations have their tools closed by a background sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ossa.agent.engines import Engine
from ossa.agent.settings import Settings
from ossa.serve import chat, responses
from ossa.serve.errors import APIError
from ossa.serve.limits import Limits, authorized
from ossa.serve.pool import ConversationPool, shared_engine
from ossa.serve.service import Service
from ossa.serve.state import ServerState
from ossa.serve.store import ResponseStore
from ossa.tools.base import Tool

log = logging.getLogger(__name__)

#: The built-in tools ``ossa serve`` can run for a request.
BUILTINS = ("browser", "python")
#: How often idle conversations are looked for (seconds).
SWEEP_SECONDS = 30.0


def build_state(
    engine: Engine,
    settings: Settings,
    *,
    store: Path | str,
    model_name: str | None = None,
    api_key: str | None = None,
    limits: Limits | None = None,
    idle_seconds: float = 600.0,
) -> ServerState:
    """Everything the handlers share, around ``engine`` (shared fairly between requests)."""
    builtins = tuple(name for name in settings.tools if name in BUILTINS)

    def make_tools() -> dict[str, Tool]:
        if not builtins:
            return {}
        from ossa.agent.cli.components import open_tools

        return dict(open_tools(settings, list(builtins), plugins=False).tools)

    for tool in make_tools().values():  # a bad tool setting fails now, not in a request
        tool.close()
    pool = ConversationPool(make_tools, idle_seconds)
    return ServerState(
        service=Service(shared_engine(engine), settings, pool),
        store=ResponseStore(store),
        limits=limits or Limits(),
        model_name=model_name or settings.model,
        builtins=builtins,
        api_key=api_key,
    )


def create_app(state: ServerState) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep(state))
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.to_thread(state.service.pool.close)
            state.store.close()

    app = Starlette(
        routes=[
            Route("/v1/responses", responses.create, methods=["POST"]),
            Route("/v1/responses/{response_id}", responses.retrieve, methods=["GET"]),
            Route("/v1/responses/{response_id}", responses.delete, methods=["DELETE"]),
            Route("/v1/chat/completions", chat.create, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", model, methods=["GET"]),
        ],
        exception_handlers={
            APIError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.ossa = state
    if state.api_key:
        app.add_middleware(KeyCheck, api_key=state.api_key)
    return app


class KeyCheck:
    """Every request must carry ``Authorization: Bearer KEY`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            header = headers.get(b"authorization", b"").decode("latin-1")
            if not authorized(header, self.api_key):
                error = APIError(
                    401,
                    "Incorrect API key provided.",
                    code="invalid_api_key",
                )
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def models(request: Request) -> Response:
    state: ServerState = request.app.state.ossa
    return JSONResponse({"object": "list", "data": [_model(state)]})


async def model(request: Request) -> Response:
    state: ServerState = request.app.state.ossa
    if request.path_params["model_id"] != state.model_name:
        raise APIError(
            404,
            f"The model '{request.path_params['model_id']}' does not exist.",
            param="model",
            code="model_not_found",
        )
    return JSONResponse(_model(state))


def _model(state: ServerState) -> dict:
    return {"id": state.model_name, "object": "model", "created": 0, "owned_by": "ossa"}


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"Unknown route: {request.method} {request.url.path}."}.get(
        exc.status_code, str(exc.detail)
    )
    return APIError(exc.status_code, message).response()


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("request failed: %s %s", request.method, request.url.path, exc_info=exc)
    return APIError(
        500, "The server had an error processing the request.", type="server_error"
    ).response()


async def _sweep(state: ServerState) -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        closed = await asyncio.to_thread(state.service.pool.reap)
        if closed:
            log.info("closed the tools of %d idle conversation(s)", closed)
