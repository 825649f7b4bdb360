"""Writing a conversation out: harmony conversation JSON or readable Markdown."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from ossa import jsontext
from ossa.agent.render import conversation_markdown
from ossa.errors import OssaError
from ossa.harmony import Message


class Format(StrEnum):
    """What a conversation is exported as."""

    json = "json"  # harmony conversation JSON
    md = "md"  # readable Markdown


def exported(messages: list[Message], fmt: str) -> str:
    """The conversation as text in ``fmt`` (a :class:`Format`)."""
    if fmt == "md":
        return conversation_markdown(messages)
    body = {"messages": [m.to_dict() for m in messages]}
    return jsontext.dumps(body, indent=2) + "\n"


def export_to(messages: list[Message], path: Path, fmt: str | None = None) -> Path:
    """Write the conversation to ``path`` (``~`` expanded, folders created); returns the path.

    The format is ``fmt`` when given, else Markdown for a ``.md`` file and JSON otherwise.
    """
    path = path.expanduser()
    fmt = fmt or ("md" if path.suffix.lower() in (".md", ".markdown") else "json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(exported(messages, fmt), encoding="utf-8")
    except OSError as exc:
        raise OssaError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
