"""What every request handler shares: the service, the store, the limits, the model's name."""

from __future__ import annotations

from dataclasses import dataclass

from ossa.agent.settings import Settings
from ossa.serve.errors import APIError
from ossa.serve.limits import Limits
from ossa.serve.service import Service, TurnRequest, TurnRun
from ossa.serve.store import ResponseStore


@dataclass
class ServerState:
    service: Service
    store: ResponseStore
    limits: Limits
    #: The name ``/v1/models`` lists and responses carry when a request names none.
    model_name: str
    #: The built-in tools this server runs ("browser", "python"); a request picks among them.
    builtins: tuple[str, ...]
    api_key: str | None = None

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def start(self, request: TurnRequest) -> TurnRun:
        """The request's turn, or a 429 when ``max_turns`` are already running or waiting."""
        if self.service.running >= self.limits.max_turns:
            raise APIError(
                429,
                f"The server is busy: {self.limits.max_turns} requests are in progress; "
                "retry shortly.",
                type="rate_limit_error",
                code="too_many_requests",
            )
        return self.service.turn(request)
