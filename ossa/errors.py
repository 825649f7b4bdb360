"""The one error idiom at the command-line boundary.

Code anywhere in ossa raises an :class:`OssaError` (or a subclass) for a failure a user can
act on; ``ossa.cli.main`` catches it, prints ``error: <message>`` as one line on stderr and
exits with the error's ``exit_code``. Anything else that escapes is a bug and keeps its
traceback.
"""

from __future__ import annotations


class OssaError(Exception):
    """A failure to report to the user as one line; ``exit_code`` is the process status."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(OssaError):
    """The command was called wrongly (a bad flag value, an empty task): exit status 2."""

    exit_code = 2


__all__ = ["OssaError", "UsageError"]
