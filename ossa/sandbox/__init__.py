"""Hardened Docker containers running stateful python sessions (the `python` tool's sandbox)."""

from ossa.sandbox.container import Limits
from ossa.sandbox.errors import SandboxError, SandboxUnavailable
from ossa.sandbox.image import DEFAULT_IMAGE
from ossa.sandbox.pool import WarmPool
from ossa.sandbox.session import Result, Session, open_session

__all__ = [
    "DEFAULT_IMAGE",
    "Limits",
    "Result",
    "SandboxError",
    "SandboxUnavailable",
    "Session",
    "WarmPool",
    "open_session",
]
