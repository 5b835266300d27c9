"""Cleanup contexts (one per long-lived resource) and the ordered shutdown.

``worker_connection`` keeps ``worker.sock`` connected, ``queue_dispatcher``
feeds it one job at a time, ``http_session`` serves attachment downloads (``REMOTE_ATTACHMENTS=public``).
``drain`` runs on shutdown (``on_shutdown``, and first from ``__main__`` on
SIGTERM): stop taking chat requests (503), give in-flight ones
``settings.shutdown_grace_s``, then end the rest with a 503 (an error event on
open streams), logging each step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from api_server import utc
from api_server.app_keys import ENGINE, LEDGER, LIMITER, QUEUE, RESPONSES, SETTINGS, STATE, WORKER
from api_server.remote_fetch import RemoteFetcher
from shared.errors import WorkerUnavailable

log = logging.getLogger(__name__)

#: How long, after failing the remaining jobs, handlers get to write their error.
FAIL_FLUSH_S = 2.0


#: Pause before restarting a long-lived task that failed unexpectedly.
RESTART_DELAY_S = 1.0


async def supervise(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run ``run()`` forever: a bug in it is logged and the task restarts instead of dying silently."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting it", name)
        await asyncio.sleep(RESTART_DELAY_S)


async def _stop(name: str, task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    log.info("%s stopped", name)


async def worker_connection(app: web.Application) -> AsyncIterator[None]:
    worker = app[WORKER]
    task = asyncio.create_task(supervise("worker connection", worker.run), name="worker-connection")
    log.info("connecting to the browser worker at %s", worker.path)
    yield
    await _stop("worker connection", task)


async def queue_dispatcher(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(supervise("queue dispatcher", app[QUEUE].dispatch), name="queue-dispatcher")
    yield
    await _stop("queue dispatcher", task)


async def http_session(app: web.Application) -> AsyncIterator[None]:
    """The fetcher for http(s) attachment URLs, only with ``REMOTE_ATTACHMENTS=public``."""
    if app[SETTINGS].remote_attachments != "public":
        yield
        return
    async with RemoteFetcher() as fetcher:
        app[ENGINE].fetcher = fetcher
        yield
        app[ENGINE].fetcher = None


async def remove_orphaned_uploads(app: web.Application) -> None:
    """``on_startup``: attachment folders of a previous run (killed before it could clean up) go away. Only this
    process writes ``<run_dir>/uploads`` and a restart forgets every request, so every folder there is orphaned."""
    uploads = app[SETTINGS].run_dir / "uploads"
    if not uploads.is_dir():
        return
    orphans = [p for p in uploads.iterdir() if p.is_dir() and not p.is_symlink()]
    for path in orphans:
        shutil.rmtree(path, ignore_errors=True)
    if orphans:
        log.info("removed %d orphaned upload folder(s) from %s", len(orphans), uploads)


def _seed_daily_tokens(app: web.Application) -> None:
    """Today's tokens per key, from the ledger, so that a restart does not reset ``daily_tokens``."""
    day_start = utc.day_start(time.time())
    try:
        rows = app[LEDGER].summary(since=day_start, until=None, group_by="key", key_id=None)
    except sqlite3.Error as exc:
        log.error("cannot read today's usage from the ledger (%s): daily token counts start at 0", exc)
        return
    for row in rows:
        tokens = row["prompt_tokens"] + row["completion_tokens"] + row["reasoning_tokens"]
        app[LIMITER].spent(row["key"], tokens, at=day_start)


async def usage_ledger(app: web.Application) -> AsyncIterator[None]:
    """The usage ledger's writer thread runs while the app does; its last rows are written at the end."""
    ledger = app[LEDGER]
    ledger.start()
    await asyncio.to_thread(_seed_daily_tokens, app)
    yield
    await asyncio.to_thread(ledger.stop)


async def close_response_store(app: web.Application) -> None:
    """``on_cleanup``: the stored responses' last writes finish and the database closes."""
    await app[RESPONSES].close()


async def drain(app: web.Application) -> None:
    """Stop taking work, wait the grace period, then end what is left (idempotent)."""
    state = app[STATE]
    queue = app[QUEUE]
    if not state.stopping:
        state.stopping = True
        queue.closed = True
        log.info("shutdown: no longer accepting chat requests")
    grace = app[SETTINGS].shutdown_grace_s
    if len(queue):
        log.info("shutdown: waiting up to %.1f s for %d request(s)", grace, len(queue))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await queue.wait_for(lambda q: len(q) == 0)
    if len(queue):
        count = queue.fail_all(
            WorkerUnavailable(
                "The server is shutting down; retry shortly.", retry_after=5, code="shutting_down"
            )
        )
        log.info("shutdown: ended %d remaining request(s) with 503", count)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FAIL_FLUSH_S):
                await queue.wait_for(lambda q: len(q) == 0)
    log.info("shutdown: request queue drained")


async def on_shutdown(app: web.Application) -> None:
    await drain(app)
