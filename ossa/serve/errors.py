"""The one error a request can get: an OpenAI-shaped error object with a 4xx status.

Clients (the ``openai`` SDKs, Codex) read ``{"error": {"message", "type", "param", "code"}}``
and raise their own typed exceptions from the status, so every refusal is one of these and
no request ever sees a traceback.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class APIError(Exception):
    """A request the server refuses; ``status`` is the HTTP status (4xx for the client's fault)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    """The usual refusal: 400, ``invalid_request_error``, naming the parameter at fault."""
    return APIError(400, message, param=param, code=code)
