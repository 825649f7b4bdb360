"""One HTTP server an engine talks to: JSON calls and event streams, failures as EngineError.

Every failure a user can meet (nothing listening, a timeout, an HTTP error, a stream cut in
the middle) becomes one :class:`~ossa.agent.engines.base.EngineError` that names the server
and says what happened, with the server's own message for an HTTP error. Transient failures
(connection refused or reset, 429 and 5xx gateway answers) are retried with backoff, but only
before the first event of a response arrives: once tokens have streamed, a retry would
generate a different completion, so a cut stream is an error, never a silent restart.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx

from ossa.agent.engines.base import EngineError

__all__ = ["RETRYABLE_STATUS", "Server", "ServerError", "api_key", "server_url"]

#: Answers that mean "try again shortly" (rate limit, gateway or server warming up).
RETRYABLE_STATUS = frozenset({408, 429, 502, 503, 504})
#: Generations an HTTP engine lets run at once: servers batch requests and queue the rest,
#: so this only bounds how many streams one ossa process keeps open to a server.
SERVER_CONCURRENCY = 32
#: The SSE payload that ends an OpenAI-style stream; yielded as ``None``.
DONE = "[DONE]"


class ServerError(EngineError):
    """The server answered with an HTTP error; ``status`` lets a caller treat 404 as "absent"."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def server_url(scheme: str, target: str) -> str:
    """``http://host:port`` from a spec's target (``host:port`` alone means plain http)."""
    target = target.strip()
    if not target:
        raise EngineError(f"{scheme}: name the server, like {scheme}:http://127.0.0.1:8000")
    if "://" not in target:
        target = f"http://{target}"
    if not target.startswith(("http://", "https://")):
        raise EngineError(f"{scheme}: {target!r} is not an http:// or https:// URL")
    return target.rstrip("/")


def api_key(scheme: str) -> str | None:
    """``OSSA_<SCHEME>_API_KEY``, else the ``api_key`` setting (config.toml or OSSA_API_KEY)."""
    key = os.environ.get(f"OSSA_{scheme.upper()}_API_KEY")
    if key:
        return key
    from ossa.agent.settings import load_config  # settings read the config file: only now

    return load_config().api_key


class Server:
    """A base URL with its API key, one pooled client shared by every thread's calls."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def get(self, path: str) -> Any:
        """GET ``path`` as JSON (retried while transient)."""
        return self._json("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``path``, the answer as JSON (retried while transient)."""
        return self._json("POST", path, body)

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any] | None]:
        """POST ``body`` and yield each streamed JSON event (SSE ``data:`` lines or NDJSON).

        ``None`` stands for the SSE ``[DONE]`` marker. Closing the iterator closes the
        response, which drops the connection: that is how a server learns to stop.
        """
        for attempt in range(self.retries + 1):
            received = False
            try:
                with self._client.stream("POST", path, json=body) as response:
                    self._check(response, path)
                    for line in response.iter_lines():
                        event = _event(line, self._where(path))
                        if event is _SKIP:
                            continue
                        received = True
                        yield event
                return
            except _Transient as exc:
                if attempt == self.retries:
                    raise EngineError(str(exc)) from None
            except httpx.HTTPError as exc:
                if received:
                    raise EngineError(
                        f"the stream from {self._where(path)} was cut mid-way ({_reason(exc)})"
                    ) from None
                if attempt == self.retries or not _transient(exc):
                    raise EngineError(self._failure(exc, path)) from None
            time.sleep(self.backoff * 2**attempt)

    def _json(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = self._client.request(method, path, json=body)
                self._check(response, path)
                try:
                    return response.json()
                except ValueError:
                    raise EngineError(
                        f"{self._where(path)} did not answer with JSON: {response.text[:200]!r}"
                    ) from None
            except _Transient as exc:
                if attempt == self.retries:
                    raise EngineError(str(exc)) from None
            except httpx.HTTPError as exc:
                if attempt == self.retries or not _transient(exc):
                    raise EngineError(self._failure(exc, path)) from None
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _check(self, response: httpx.Response, path: str) -> None:
        """Raise for an HTTP error, with the server's own message (retryable ones marked)."""
        if response.is_success:
            return
        response.read()
        message = f"{self._where(path)} answered HTTP {response.status_code}: {_message(response)}"
        if response.status_code in RETRYABLE_STATUS:
            raise _Transient(message)
        raise ServerError(message, response.status_code)

    def _failure(self, exc: httpx.HTTPError, path: str) -> str:
        if isinstance(exc, httpx.ConnectError):
            return f"cannot connect to {self.base_url} ({_reason(exc)}): is the server running?"
        if isinstance(exc, httpx.TimeoutException):
            return f"{self._where(path)} did not answer in time ({type(exc).__name__})"
        return f"{self._where(path)} failed: {_reason(exc)}"

    def _where(self, path: str) -> str:
        return f"{self.base_url}{path}"


class _Transient(Exception):
    """An HTTP answer worth retrying (its message is the error if retries run out)."""


_SKIP = object()


def _transient(exc: httpx.HTTPError) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.RemoteProtocolError)


def _event(line: str, where: str) -> Any:
    """One streamed line as JSON; blank lines, comments and SSE ``event:``/``id:`` are skipped."""
    line = line.strip()
    if not line or line.startswith(":") or line.startswith(("event:", "id:", "retry:")):
        return _SKIP
    if line.startswith("data:"):
        line = line[5:].strip()
        if line == DONE:
            return None
    try:
        event = json.loads(line)
    except ValueError:
        raise EngineError(f"{where} streamed something that is not JSON: {line[:200]!r}") from None
    if isinstance(event, dict) and "error" in event:
        raise EngineError(f"{where} reported an error mid-stream: {_error_text(event['error'])}")
    return event


def _message(response: httpx.Response) -> str:
    """The server's explanation: ``error.message``, ``error``, ``detail``, else the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if key in body:
                return _error_text(body[key])
    return json.dumps(body)[:500]


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("msg") or json.dumps(error))
    if isinstance(error, list):  # FastAPI validation details
        return "; ".join(_error_text(e) for e in error)
    return str(error)


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
