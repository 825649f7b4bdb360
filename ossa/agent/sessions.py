"""Session transcripts: one JSONL file per conversation, every record flushed and fsynced.

A record is one JSON object with a ``kind``:

- ``meta``: written first (id, creation time, and the settings that define the conversation:
  model, effort, tools, instructions, browser settings, with absolute paths), again when
  they change;
- ``message``: a harmony message appended to the conversation (openai-harmony's JSON), with
  ``tokens``, the exact tokens it was generated as, for a model's message;
- ``header``: the leading system/developer messages were rebuilt (``/effort``, ``/tools``);
- ``event``: an agent event (deltas are written coalesced, one record per message).

Replaying the ``message`` and ``header`` records rebuilds the conversation exactly, so a
resumed session renders the same tokens it had. A crash can leave at most a torn last line;
reading skips it and appending starts on a fresh line, so nothing before it is lost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ossa import jsontext
from ossa.agent.budget import leading_header_length
from ossa.agent.events import Event, event_from_dict
from ossa.errors import OssaError
from ossa.harmony import Message, Role
from ossa.tools.base import message_text


class SessionError(OssaError):
    """A session that does not exist, is ambiguous or cannot be read."""


@dataclass
class Transcript:
    """What a session file holds once its records are replayed."""

    meta: dict[str, Any]
    messages: list[Message] = field(default_factory=list)
    #: Per message, the tokens it was generated as (None: rendered from the message).
    tokens: list[list[int] | None] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    skipped_lines: int = 0

    def summary(self) -> dict[str, Any]:
        """What ``ossa sessions list`` shows of a session (one JSON object with ``--json``)."""
        return {
            "id": self.meta.get("id", ""),
            "created": self.meta.get("created", ""),
            "model": self.meta.get("model", ""),
            "messages": len(self.messages),
            "title": self.title,
        }

    @property
    def title(self) -> str:
        """The first user message, shortened: what a listing shows."""
        for message in self.messages:
            if message.author.role == Role.USER:
                text = " ".join(message_text(message).split())
                return text if len(text) <= 60 else text[:59] + "…"
        return ""


class Session:
    """An open transcript that records are appended to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.stem
        if path.exists() and path.stat().st_size:
            with path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
            if torn:  # a crash mid-write: keep the torn line, start the next record cleanly
                self._write_raw("\n")

    def update_meta(self, **fields: Any) -> None:
        """Settings changed mid-session (``/effort``, ``/tools``): later ``meta`` records win."""
        self._write({"kind": "meta", **fields})

    def append_message(self, message: Message, *, tokens: list[int] | None = None) -> None:
        record: dict[str, Any] = {"kind": "message", "message": message.to_dict()}
        if tokens is not None:
            record["tokens"] = tokens
        self._write(record)

    def replace_header(self, messages: list[Message]) -> None:
        """The leading system/developer messages were rebuilt (new effort or tools)."""
        self._write({"kind": "header", "messages": [m.to_dict() for m in messages]})

    def append_event(self, event: Event) -> None:
        self._write({"kind": "event", "event": event.to_dict()})

    def load(self) -> Transcript:
        return read_transcript(self.path)

    def _write(self, record: dict[str, Any]) -> None:
        self._write_raw(jsontext.dumps(record) + "\n")

    def _write_raw(self, text: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


class SessionStore:
    """The directory of session files (under the ossa data directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, meta: dict[str, Any]) -> Session:
        """A new session file whose first record is ``meta``."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            now = datetime.now(UTC)
            session_id = f"{now:%Y%m%d-%H%M%S-%f}"  # sorts by creation time
            while (self.root / f"{session_id}.jsonl").exists():
                now = datetime.now(UTC)
                session_id = f"{now:%Y%m%d-%H%M%S-%f}"
            session = Session(self.root / f"{session_id}.jsonl")
            session._write({"kind": "meta", "id": session_id, "created": now.isoformat(), **meta})
        except OSError as exc:
            raise SessionError(
                f"cannot create a session in {self.root}: {exc.strerror or exc} (OSSA_HOME moves it)"
            ) from None
        return session

    def open(self, session_id: str) -> Session:
        """Open by id or by a unique prefix of it; ``last`` is the newest session."""
        ids = self.ids()
        if session_id == "last" and ids:
            return Session(self.root / f"{ids[-1]}.jsonl")
        matches = [i for i in ids if i.startswith(session_id)]
        if not matches:
            raise SessionError(f"no session {session_id!r} in {self.root}")
        if len(matches) > 1 and session_id not in matches:
            raise SessionError(
                f"{session_id!r} matches {len(matches)} sessions: {', '.join(matches)}"
            )
        chosen = session_id if session_id in matches else matches[0]
        return Session(self.root / f"{chosen}.jsonl")

    def remove(self, session_id: str) -> Session:
        """Delete a session file (found as :meth:`open` finds it); returns what was removed."""
        session = self.open(session_id)
        try:
            session.path.unlink()
        except OSError as exc:
            raise SessionError(f"cannot remove {session.path}: {exc}") from None
        return session

    def ids(self) -> list[str]:
        """Session ids, oldest first (ids start with their UTC creation time)."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.jsonl"))

    def __iter__(self) -> Iterator[Transcript]:
        for session_id in self.ids():
            yield read_transcript(self.root / f"{session_id}.jsonl")


def read_transcript(path: Path) -> Transcript:
    """Replay a session file; torn or unreadable lines are counted, not fatal."""
    transcript = Transcript(meta={"id": path.stem})
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise SessionError(f"cannot read {path}: {exc}") from exc
    for line in lines:
        if not line.strip():
            continue
        try:
            _apply(transcript, json.loads(line))
        except (ValueError, KeyError, TypeError, IndexError):
            transcript.skipped_lines += 1
    return transcript


def _apply(transcript: Transcript, record: dict[str, Any]) -> None:
    kind = record["kind"]
    if kind == "meta":
        transcript.meta.update({k: v for k, v in record.items() if k != "kind"})
    elif kind == "message":
        message = Message.from_dict(record["message"])
        tokens = record.get("tokens")
        if tokens is not None and not all(type(t) is int for t in tokens):
            raise ValueError("tokens")
        transcript.messages.append(message)
        transcript.tokens.append(tokens)
    elif kind == "header":
        n = leading_header_length(transcript.messages)
        transcript.messages[:n] = [Message.from_dict(m) for m in record["messages"]]
        transcript.tokens[:n] = [None] * len(record["messages"])
    elif kind == "event":
        transcript.events.append(event_from_dict(record["event"]))
    else:
        raise ValueError(kind)
