"""Server-side conversations: one SQLite file (stdlib sqlite3, WAL mode) under the data folder, one row per message.

A conversation belongs to the API key that made it: the store keeps a SHA-256 of the key (never the key), and
requests without a key share the anonymous scope. A conversation that was not used for ``ttl`` seconds has
expired: it reads as unknown, and is deleted by the next write. Every assistant message keeps the id of the
response that produced it, so that a response id (a chat completion's ``id``, a Responses ``resp_...`` id) names
the conversation as it was after that answer: sent back, it continues from there (a turn that is not the last
starts a copy of the conversation up to it, so that both lines go on).

Every call is short and takes one lock: call them from the event loop through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glm_edge.errors import ErrorKind, GlmEdgeError

ANONYMOUS = "anonymous"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    message TEXT NOT NULL,
    response_id TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX IF NOT EXISTS messages_response ON messages(response_id);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations(updated);
"""


class ConversationNotFoundError(GlmEdgeError):
    kind = ErrorKind.NOT_FOUND

    def __init__(self, conversation_id: str, *, param: str = "conversation_id") -> None:
        super().__init__(f"no conversation '{conversation_id}': it does not exist, has expired or belongs to "
                         "another API key", param=param, code="conversation_not_found")


def owner_of(api_key: str | None) -> str:
    """The scope a key's conversations live in: a SHA-256 of the key, or the anonymous scope."""
    if not api_key:
        return ANONYMOUS
    return "sha256:" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_conversation_id() -> str:
    return f"conv_{uuid.uuid4().hex}"


@dataclass
class Resumed:
    """Where a request continues: the conversation to append to and the messages before the new ones."""

    conversation_id: str
    messages: list[dict[str, Any]]


class ConversationStore:
    def __init__(self, path: Path, ttl: float) -> None:
        self.path = path
        self.ttl = ttl
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- reading ----------------------------------------------------------------------------------

    def _live(self, conversation_id: str, owner: str, now: float) -> bool:
        row = self._db.execute("SELECT owner, updated FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return row is not None and row[0] == owner and now - row[1] <= self.ttl

    def _rows(self, conversation_id: str, upto: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        sql = "SELECT seq, message FROM messages WHERE conversation_id = ?"
        args: tuple[Any, ...] = (conversation_id,)
        if upto is not None:
            sql += " AND seq <= ?"
            args += (upto,)
        return [(seq, json.loads(text)) for seq, text in self._db.execute(sql + " ORDER BY seq", args)]

    def messages(self, conversation_id: str, owner: str) -> list[dict[str, Any]]:
        """Every message of a live conversation of ``owner``, oldest first; else ConversationNotFoundError."""
        with self._lock:
            if not self._live(conversation_id, owner, time.time()):
                raise ConversationNotFoundError(conversation_id)
            return [message for _, message in self._rows(conversation_id)]

    def resume(self, ref: str, owner: str, *, param: str = "conversation_id") -> Resumed:
        """The conversation that ``ref`` names, a conversation id or a response id, with its messages (for a
        response id that is not the conversation's last turn: a new copy up to that turn)."""
        now = time.time()
        with self._lock:
            if self._live(ref, owner, now):
                return Resumed(ref, [m for _, m in self._rows(ref)])
            row = self._db.execute("SELECT conversation_id, seq FROM messages WHERE response_id = ?",
                                   (ref,)).fetchone()
            if row is None or not self._live(row[0], owner, now):
                raise ConversationNotFoundError(ref, param=param)
            conversation_id, seq = row
            rows = self._rows(conversation_id)
            if rows and rows[-1][0] == seq:
                return Resumed(conversation_id, [m for _, m in rows])
            kept = [m for s, m in rows if s <= seq]
            copy = new_conversation_id()
            self._insert(copy, owner, now)
            self._append(copy, kept, None, now)
            return Resumed(copy, kept)

    # --- writing ----------------------------------------------------------------------------------

    def _insert(self, conversation_id: str, owner: str, now: float) -> None:
        self._db.execute("INSERT INTO conversations (id, owner, created, updated) VALUES (?, ?, ?, ?)",
                         (conversation_id, owner, now, now))

    def _append(self, conversation_id: str, messages: list[dict[str, Any]], response_id: str | None,
                now: float) -> None:
        (last,) = self._db.execute("SELECT COALESCE(MAX(seq), -1) FROM messages WHERE conversation_id = ?",
                                   (conversation_id,)).fetchone()
        rows = []
        for i, message in enumerate(messages):
            is_answer = i == len(messages) - 1 and message.get("role") == "assistant"
            rows.append((conversation_id, last + 1 + i, str(message.get("role")),
                         json.dumps(message, ensure_ascii=False), response_id if is_answer else None, now))
        self._db.executemany("INSERT INTO messages (conversation_id, seq, role, message, response_id, created) "
                             "VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))

    def append(self, conversation_id: str, owner: str, messages: list[dict[str, Any]],
               response_id: str | None = None) -> None:
        """Add a turn (the request's new messages, then the answer, which keeps ``response_id``); a conversation
        that does not exist yet is made for ``owner``. Expired conversations are removed first."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._purge(now)
                row = self._db.execute("SELECT owner FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
                if row is None:
                    self._insert(conversation_id, owner, now)
                elif row[0] != owner:
                    raise ConversationNotFoundError(conversation_id)
                self._append(conversation_id, messages, response_id, now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete(self, conversation_id: str, owner: str) -> None:
        with self._lock:
            if not self._live(conversation_id, owner, time.time()):
                raise ConversationNotFoundError(conversation_id)
            self._db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def _purge(self, now: float) -> None:
        old = "SELECT id FROM conversations WHERE updated < ?"
        self._db.execute(f"DELETE FROM messages WHERE conversation_id IN ({old})", (now - self.ttl,))
        self._db.execute("DELETE FROM conversations WHERE updated < ?", (now - self.ttl,))

    def purge(self) -> None:
        """Remove every expired conversation now."""
        with self._lock:
            self._purge(time.time())
