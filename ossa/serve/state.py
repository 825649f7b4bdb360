"""What every request handler shares: the service, the store, the limits, the model's name."""

from __future__ import annotations

from dataclasses import dataclass

from ossa.agent.settings import Settings
from ossa.serve.limits import Limits
from ossa.serve.service import Service
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
