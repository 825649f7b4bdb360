"""Stored responses (``store: true``): SQLite, so ``previous_response_id`` survives a restart.

Each row keeps the response object the client saw and the whole harmony conversation
behind it, each message with the exact tokens it was generated as (see
:class:`~ossa.agent.context.Context`): a continuation renders the same prefix the engine
has cached, and prefills only the new input.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ossa.agent.context import Tokens
from ossa.errors import OssaError
from ossa.harmony import Message

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    conversation TEXT NOT NULL,
    response TEXT NOT NULL,
    messages TEXT NOT NULL,
    tokens TEXT NOT NULL
)
"""


@dataclass
class Stored:
    """One stored response and the conversation it ended."""

    id: str
    conversation: str
    response: dict[str, Any]
    messages: list[Message]
    tokens: list[Tokens]


class ResponseStore:
    """A SQLite file of responses; safe to use from the server's worker threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise OssaError(f"cannot open the response store {path}: {exc}") from exc
        self._lock = threading.Lock()

    def put(self, stored: Stored) -> None:
        row = (
            stored.id,
            time.time(),
            stored.conversation,
            json.dumps(stored.response, ensure_ascii=False),
            json.dumps([m.to_dict() for m in stored.messages], ensure_ascii=False),
            json.dumps(stored.tokens),
        )
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)", row)
            self._db.commit()

    def get(self, response_id: str) -> Stored | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, conversation, response, messages, tokens FROM responses WHERE id = ?",
                (response_id,),
            ).fetchone()
        if row is None:
            return None
        return Stored(
            id=row[0],
            conversation=row[1],
            response=json.loads(row[2]),
            messages=[Message.from_dict(m) for m in json.loads(row[3])],
            tokens=json.loads(row[4]),
        )

    def delete(self, response_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            self._db.commit()
        return cursor.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
