"""Stored Responses API responses (``store: true``): an embedded SQLite file, ``DATA_DIR/responses.sqlite3``.

Each row is one response object, its input items, the canonical conversation it leaves for
``previous_response_id``, and the key id of its owner (a client key sees only its own). The file
is 0600 in a 0700 folder, in WAL mode; every query runs off the event loop (``asyncio.to_thread``)
on one connection behind a lock. ``remember()`` makes a response visible at once (a client may
continue it as soon as its stream ends) and writes it in the background. Rows older than
``RESPONSES_RETENTION_DAYS`` are deleted when the store opens and at every write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    owner TEXT,
    created_at REAL NOT NULL,
    response BLOB NOT NULL,
    input_items BLOB NOT NULL,
    conversation BLOB NOT NULL
)
"""


@dataclass(frozen=True)
class Stored:
    id: str
    owner: str | None
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    conversation: list[dict[str, Any]]


class ResponseStore:
    def __init__(self, folder: Path, retention_days: int) -> None:
        self.path = folder / "responses.sqlite3"
        self.retention_s = retention_days * 86400.0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, Stored] = {}
        self._writes: set[asyncio.Task[None]] = set()

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path.parent, 0o700)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
            db = sqlite3.connect(self.path, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            db.commit()
            self._db = db
            self._expire(db)
        return self._db

    def _expire(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM responses WHERE created_at < ?", (time.time() - self.retention_s,))
        db.commit()

    # ---- blocking halves (run in a thread)

    def _put(self, row: Stored) -> None:
        with self._lock:
            db = self._connect()
            db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.owner,
                    time.time(),
                    orjson.dumps(row.response),
                    orjson.dumps(row.input_items),
                    orjson.dumps(row.conversation),
                ),
            )
            db.commit()
            self._expire(db)

    def _get(self, response_id: str) -> Stored | None:
        with self._lock:
            db = self._connect()
            found = db.execute(
                "SELECT owner, response, input_items, conversation FROM responses "
                "WHERE id = ? AND created_at >= ?",
                (response_id, time.time() - self.retention_s),
            ).fetchone()
        if found is None:
            return None
        owner, response, items, conversation = found
        return Stored(
            response_id, owner, orjson.loads(response), orjson.loads(items), orjson.loads(conversation)
        )

    def _delete(self, response_id: str) -> None:
        with self._lock:
            db = self._connect()
            db.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            db.commit()

    # ---- the event loop's side

    def remember(self, row: Stored) -> None:
        """Keep ``row`` now (visible to ``get`` at once) and write it in the background."""
        self._pending[row.id] = row
        task = asyncio.get_running_loop().create_task(self._write(row))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, row: Stored) -> None:
        try:
            await asyncio.to_thread(self._put, row)
        except Exception:
            log.exception("could not store response %s", row.id)
        finally:
            if self._pending.get(row.id) is row:
                del self._pending[row.id]

    async def get(self, response_id: str) -> Stored | None:
        pending = self._pending.get(response_id)
        if pending is not None:
            return pending
        return await asyncio.to_thread(self._get, response_id)

    async def delete(self, response_id: str) -> None:
        if self._writes:  # a write still under way would bring the row back
            await asyncio.gather(*self._writes, return_exceptions=True)
        await asyncio.to_thread(self._delete, response_id)

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
