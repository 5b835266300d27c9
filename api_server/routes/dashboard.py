"""The operator dashboard: its static page at ``/dashboard`` and its live feed ``GET /api/events``.

The page holds no data: it loads without a key and asks for the admin key, which it keeps in the browser's
session storage and sends as ``Authorization: Bearer`` with every call. The feed is Server-Sent Events read
with ``fetch`` (``EventSource`` cannot send that header): a ``state`` event with everything the panels show,
sent at once, then whenever it changes, looked at once a second (never faster), and a comment every 15 s of
quiet so proxies keep the connection open.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import time
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from api_server.app_keys import QUEUE, RECENT, SETTINGS, STATE, WORKER
from shared import channel, protocol
from shared.errors import NotFound, WorkerUnavailable

routes = web.RouteTableDef()

#: How often the feed looks for changes (seconds): the dashboard never polls faster.
TICK_S = 1.0
#: A comment after this long without an event (seconds).
QUIET_S = 15.0
#: Recent requests the feed carries.
RECENT_SHOWN = 25
STATIC = resources.files("api_server.dashboard") / "static"


@routes.get("/dashboard")
async def index(request: web.Request) -> web.Response:
    return _static("index.html")


@routes.get("/dashboard/{name}")
async def static_file(request: web.Request) -> web.Response:
    return _static(request.match_info["name"])


def _static(name: str) -> web.Response:
    """A file of the dashboard's folder (no sub-folders, nothing outside it)."""
    entry = STATIC / name
    if "/" in name or "\\" in name or name.startswith(".") or not entry.is_file():
        raise NotFound(f"No dashboard file {name!r}.", code="not_found")
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "frame-ancestors 'none'",
    }
    return web.Response(body=entry.read_bytes(), content_type=kind, headers=headers)


@routes.get("/api/events")
async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    last, sent_at = b"", time.monotonic()
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        while True:
            state = orjson.dumps(await snapshot(request.app))
            if state != last:
                await response.write(b"event: state\ndata: " + state + b"\n\n")
                last, sent_at = state, time.monotonic()
            elif time.monotonic() - sent_at >= QUIET_S:
                await response.write(b": quiet\n\n")
                sent_at = time.monotonic()
            await asyncio.sleep(TICK_S)
    return response


async def snapshot(app: web.Application) -> dict[str, Any]:
    """Everything the dashboard's panels show, as the API knows it now."""
    settings, worker = app[SETTINGS], app[WORKER]
    try:
        status: protocol.WorkerStatus | None = await worker.status(timeout=2.0)
    except WorkerUnavailable:
        status = None
    proxy = await _ping(settings.proxy_socket) if settings.stream_port else None
    processes = {
        "api_server": {"state": "stopping" if app[STATE].stopping else "ok", "version": app[STATE].version},
        "browser_worker": (
            {"state": status.state, "message": status.message, "capture": status.capture}
            if status is not None
            else {"state": "disconnected", "message": "the worker is not connected"}
        ),
        "stream_proxy": (
            {"state": "disabled", "message": "STREAM_PORT=0"}
            if not settings.stream_port
            else {"state": "ok", "pid": proxy}
            if proxy is not None
            else {"state": "down", "message": f"no answer on {settings.proxy_socket.name}"}
        ),
    }
    return {
        "processes": processes,
        "accounts": [a.model_dump() for a in status.accounts] if status else [],
        "slots": [s.model_dump() for s in status.slots] if status else [],
        "self_test": status.self_test if status else {},
        "selectors": status.selectors.model_dump() if status else None,
        "queue": app[QUEUE].snapshot(),
        "recent": [r.to_json() for r in app[RECENT].latest(RECENT_SHOWN)],
    }


async def _ping(path: Any) -> int | None:
    try:
        return (await channel.ping(path, timeout=1.0)).pid
    except (OSError, TimeoutError, protocol.FrameError):
        return None
