"""What the server lets a client do: where it listens, who may call it, how much one request may ask.

A server on a public address runs tools (a sandbox, a browser) for whoever reaches it, so
it refuses to bind anywhere but loopback without an API key, and compares the key in
constant time. Limits bound what one request can make the server hold or do.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from ossa.errors import UsageError


@dataclass(frozen=True)
class Limits:
    """Per-request bounds (a request over one gets a 400 or 413, never a partial run)."""

    #: Bytes of one request body (Codex sends the whole conversation every time).
    max_body_bytes: int = 16 * 1024 * 1024
    #: Input items (Responses) or messages (Chat Completions) in one request.
    max_items: int = 4096
    #: Tools one request may declare.
    max_tools: int = 256
    #: Generated tokens per response; a request asking for more gets this many.
    max_output_tokens: int = 32768
    #: Requests in progress at once (each holds a thread while it runs or waits its turn).
    max_turns: int = 256


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse a non-loopback bind without an API key (one line a user can act on)."""
    if not is_loopback(host) and not api_key:
        raise UsageError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could "
            "run tools here; pass --api-key (or OSSA_API_KEY), or bind 127.0.0.1"
        )


def authorized(header: str | None, api_key: str) -> bool:
    """Whether an ``Authorization: Bearer KEY`` header carries ``api_key`` (constant time)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    return hmac.compare_digest(token.strip().encode(), api_key.encode())
