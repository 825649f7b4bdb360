"""The sandbox's exceptions: callers catch SandboxUnavailable to disable the python tool."""

from __future__ import annotations


class SandboxError(RuntimeError):
    """The sandbox could not do what was asked (the code's own errors go in Result.error)."""


class SandboxUnavailable(SandboxError):
    """No Docker daemon, no image or no requested runtime; the message names the fix."""
