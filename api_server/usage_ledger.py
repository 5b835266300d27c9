"""The usage ledger: one row per generation request of every dialect, in ``DATA_DIR/usage.sqlite3``.

A row holds the time, request id, key id, account, slot, model, dialect, stream or not, the status and
outcome, the prompt/completion/reasoning tokens (the wire's numbers, or the estimate flagged as such),
the queue wait, the time to the first token and the total time. ``finished(record)`` (an ``Observer``
of ``api_server/records.py``) only queues the row: one writer thread inserts rows in batches, so a
request never waits for the disk. When the database cannot be written (a full disk, a read-only
file, a folder that cannot be made) the writer logs the error (once a minute at most) and the rows
are counted as dropped; requests go on. The file is 0600 in a 0700 folder, in WAL mode, and rows older
than ``USAGE_RETENTION_DAYS`` are deleted when the ledger opens and every hour; the file never grows past
``USAGE_MAX_MB`` (SQLite then answers "database or disk is full", handled like a full disk).

``summary()`` and ``rows()`` (``GET /api/usage`` and its CSV export) read on their own connection,
off the event loop.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from api_server.records import RequestRecord

log = logging.getLogger(__name__)

COLUMNS = (
    "at",
    "request_id",
    "key_id",
    "dialect",
    "model",
    "stream",
    "status",
    "outcome",
    "account",
    "slot",
    "tier",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "queue_ms",
    "first_token_ms",
    "total_ms",
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    at REAL NOT NULL,
    request_id TEXT NOT NULL,
    key_id TEXT,
    dialect TEXT NOT NULL,
    model TEXT,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    account TEXT,
    slot TEXT,
    tier TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    tokens_estimated INTEGER NOT NULL,
    queue_ms REAL,
    first_token_ms REAL,
    total_ms REAL
);
CREATE INDEX IF NOT EXISTS usage_at ON usage (at);
"""
#: ``group_by`` values of ``summary()`` and the SQL expression each groups on.
GROUPS = {
    "key": "key_id",
    "model": "model",
    "account": "account",
    "dialect": "dialect",
    "day": "strftime('%Y-%m-%d', at, 'unixepoch')",
}
BATCH = 500
EXPIRE_EVERY_S = 3600.0
ERROR_LOG_EVERY_S = 60.0


def row_of(record: RequestRecord) -> tuple[Any, ...]:
    return (
        record.at,
        record.id,
        record.key_id,
        record.dialect,
        record.model,
        int(record.stream),
        record.status,
        record.outcome,
        record.account,
        record.slot,
        record.tier,
        record.prompt_tokens,
        record.completion_tokens,
        record.reasoning_tokens,
        int(record.tokens_estimated),
        record.queue_ms,
        record.stages.get("first_token"),
        record.stages.get("finished"),
    )


class UsageLedger:
    def __init__(self, folder: Path, retention_days: int, *, max_bytes: int = 2**30) -> None:
        self.path = folder / "usage.sqlite3"
        self.max_bytes = max_bytes
        self.retention_s = retention_days * 86400.0
        self.written = 0
        self.dropped = 0
        self._rows: queue.SimpleQueue[tuple[Any, ...] | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._last_error_log = 0.0
        self._expired_at = 0.0

    # ---- the request side (never blocks)

    def finished(self, record: RequestRecord) -> None:
        self._rows.put(row_of(record))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._write_rows, name="usage-ledger", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row queued so far was written or dropped (tests, shutdown)."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._rows.put(done)
        return done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._rows.put(None)
            self._thread.join(timeout)
            self._thread = None

    # ---- the writer thread

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(self.path, 0o600)
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=5)
        db.execute("PRAGMA journal_mode=WAL")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {max(self.max_bytes // page_size, 1)}")
        db.executescript(SCHEMA)
        db.commit()
        return db

    def _write_rows(self) -> None:
        db: sqlite3.Connection | None = None
        while True:
            item = self._rows.get()
            batch: list[tuple[Any, ...]] = []
            waiters: list[threading.Event] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= BATCH:
                    break
                try:
                    item = self._rows.get_nowait()
                except queue.Empty:
                    break
            if batch:
                db = self._insert(db, batch)
            for waiter in waiters:
                waiter.set()
            if stop:
                if db is not None:
                    db.close()
                return

    def _insert(
        self, db: sqlite3.Connection | None, batch: list[tuple[Any, ...]]
    ) -> sqlite3.Connection | None:
        try:
            if db is None:
                db = self._open()
            if time.time() - self._expired_at > EXPIRE_EVERY_S:
                db.execute("DELETE FROM usage WHERE at < ?", (time.time() - self.retention_s,))
                self._expired_at = time.time()
            db.executemany(f"INSERT INTO usage VALUES ({', '.join('?' * len(COLUMNS))})", batch)
            db.commit()
            self.written += len(batch)
        except (OSError, sqlite3.Error) as exc:
            self.dropped += len(batch)
            if time.monotonic() - self._last_error_log > ERROR_LOG_EVERY_S:
                self._last_error_log = time.monotonic()
                log.error(
                    "the usage ledger %s cannot be written (%s): %d row(s) dropped so far; requests go on",
                    self.path,
                    exc,
                    self.dropped,
                )
            if db is not None:
                try:
                    db.rollback()
                except sqlite3.Error:
                    pass
        return db

    # ---- reading (blocking: run in a thread)

    def _read(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)

    @staticmethod
    def _where(since: float | None, until: float | None, key_id: str | None) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1=1"]
        args: list[Any] = []
        if since is not None:
            clauses.append("at >= ?")
            args.append(since)
        if until is not None:
            clauses.append("at < ?")
            args.append(until)
        if key_id is not None:
            clauses.append("key_id = ?")
            args.append(key_id)
        return " AND ".join(clauses), args

    def summary(
        self, *, since: float | None, until: float | None, group_by: str | None, key_id: str | None
    ) -> list[dict[str, Any]]:
        """Sums per group (``GROUPS``; one row for everything when ``group_by`` is None)."""
        db = self._read()
        if db is None:
            return []
        where, args = self._where(since, until, key_id)
        group = GROUPS[group_by] if group_by else "'all'"
        sql = (
            f"SELECT {group} AS grp, COUNT(*), SUM(status < 400 AND outcome = 'ok'), SUM(prompt_tokens), "
            "SUM(completion_tokens), SUM(reasoning_tokens), SUM(tokens_estimated), AVG(queue_ms), "
            f"AVG(first_token_ms), AVG(total_ms) FROM usage WHERE {where} GROUP BY grp ORDER BY grp"
        )
        try:
            found = db.execute(sql, args).fetchall()
        finally:
            db.close()
        names = ("requests", "succeeded", "prompt_tokens", "completion_tokens", "reasoning_tokens")
        out = []
        for grp, *sums in found:
            row: dict[str, Any] = {group_by or "group": grp}
            row.update({name: int(value or 0) for name, value in zip(names, sums[:5], strict=True)})
            row["estimated_requests"] = int(sums[5] or 0)
            row["avg_queue_ms"], row["avg_first_token_ms"], row["avg_total_ms"] = (
                None if v is None else round(v, 1) for v in sums[6:]
            )
            out.append(row)
        return out

    def rows(self, *, since: float | None, until: float | None, key_id: str | None) -> list[dict[str, Any]]:
        db = self._read()
        if db is None:
            return []
        where, args = self._where(since, until, key_id)
        try:
            found = db.execute(f"SELECT * FROM usage WHERE {where} ORDER BY at", args).fetchall()
        finally:
            db.close()
        return [dict(zip(COLUMNS, row, strict=True)) for row in found]
