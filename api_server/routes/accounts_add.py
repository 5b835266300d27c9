"""Adding an account from the dashboard (``browser_worker/remote_login.py`` does the browser's part).

* ``POST /api/accounts/login`` (admin) opens a fresh sign-in page in the worker's browser and returns its
  session and a one-time ticket; ``GET /login-view/{session}?ticket=…`` is the WebSocket that carries the page's
  frames to the browser and the operator's clicks and keys back (a browser cannot put the admin key in a
  WebSocket's headers, and the key never goes in a URL: the ticket stands for it, once, for a minute).
* ``POST /api/accounts/import`` (admin) saves a Playwright storage state or a cookie-export extension's
  cookies as a new account, once the worker proved they sign in to AI Studio.

A new account's login file lands in ``auth_profiles/active/``, which the worker follows: it joins the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from api_server import cookie_import
from api_server.app_keys import WORKER
from api_server.routes.common import read_json
from api_server.worker_client import WorkerClient
from shared import protocol
from shared.errors import AuthenticationFailed, InvalidRequest

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: How long a ticket may wait for its WebSocket (seconds).
TICKET_S = 60.0
#: The worker gets this long to open a sign-in page, and to check an import (seconds).
START_S, IMPORT_S = 30.0, 60.0


@dataclass
class _Ticket:
    session: str
    expires: float


_tickets: dict[str, _Ticket] = {}
_cancels: set[asyncio.Task[None]] = set()
INPUT_FIELDS = ("kind", "x", "y", "dx", "dy", "key", "text")


@routes.post("/api/accounts/login")
async def start_login(request: web.Request) -> web.Response:
    body = await read_json(request) if request.can_read_body else {}
    name = body.get("name") if isinstance(body, dict) else None
    if name is not None and not isinstance(name, str):
        raise InvalidRequest("name must be a string.", param="name")
    reply = await request.app[WORKER].ask(
        protocol.LoginStart(id=uuid.uuid4().hex, name=name or None), START_S
    )
    assert isinstance(reply, protocol.LoginStarted)
    if reply.error or reply.session is None:
        raise InvalidRequest(f"The sign-in could not start: {reply.error}", code="login_refused")
    ticket = secrets.token_urlsafe(24)
    now = time.monotonic()
    for old in [t for t, v in _tickets.items() if v.expires < now]:
        _tickets.pop(old, None)
    _tickets[ticket] = _Ticket(reply.session, now + TICKET_S)
    worker = request.app[WORKER]
    asyncio.get_running_loop().call_later(TICKET_S, _unclaimed, ticket, worker)
    return web.json_response(
        {"session": reply.session, "ticket": ticket, "width": reply.width, "height": reply.height},
        status=201,
    )


def _unclaimed(ticket: str, worker: WorkerClient) -> None:
    """A sign-in whose view was never opened closes when its ticket expires (it holds one of the places)."""
    held = _tickets.pop(ticket, None)
    if held is not None:
        task = asyncio.get_running_loop().create_task(_cancel(worker, held.session))
        _cancels.add(task)
        task.add_done_callback(_cancels.discard)


async def _cancel(worker: WorkerClient, session: str) -> None:
    with contextlib.suppress(ConnectionError):
        await worker.send(protocol.LoginCancel(session=session))


@routes.get("/login-view/{session}")
async def login_view(request: web.Request) -> web.WebSocketResponse:
    session = request.match_info["session"]
    held = _tickets.pop(request.query.get("ticket", ""), None)
    if held is None or held.session != session or held.expires < time.monotonic():
        raise AuthenticationFailed("This sign-in view needs the one-time ticket of POST /api/accounts/login.")
    worker = request.app[WORKER]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    outbox: asyncio.Queue[protocol.LoginFrame | protocol.LoginEnded] = asyncio.Queue(maxsize=4)

    def deliver(msg: protocol.LoginFrame | protocol.LoginEnded) -> None:
        if outbox.full() and isinstance(msg, protocol.LoginFrame):
            return  # a slow viewer skips frames; the next one shows the page as it is
        with contextlib.suppress(asyncio.QueueFull):
            outbox.put_nowait(msg)

    worker.login_views[session] = deliver
    sender = asyncio.create_task(_send_frames(ws, outbox))
    try:
        await _read_input(ws, worker, session)
    finally:
        worker.login_views.pop(session, None)
        ended = sender.done() and not sender.cancelled() and sender.exception() is None
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        if not ended:  # the operator left before the sign-in ended: close its page
            with contextlib.suppress(Exception):
                await worker.send(protocol.LoginCancel(session=session))
        await ws.close()
    return ws


async def _send_frames(
    ws: web.WebSocketResponse, outbox: asyncio.Queue[protocol.LoginFrame | protocol.LoginEnded]
) -> None:
    """The page's frames, then its end, to the viewer (which then closes)."""
    while True:
        msg = await outbox.get()
        if isinstance(msg, protocol.LoginFrame):
            await ws.send_json(
                {"type": "frame", "data": msg.data, "width": msg.width, "height": msg.height, "url": msg.url}
            )
        else:
            await ws.send_json(
                {"type": "ended", "ok": msg.ok, "account": msg.account, "message": msg.message}
            )
            await ws.close()
            return


async def _read_input(ws: web.WebSocketResponse, worker: WorkerClient, session: str) -> None:
    """The operator's events: ``{"kind": "click"|"wheel"|"key"|"text", x, y, dx, dy, key, text}``."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            raw = json.loads(message.data)
            fields = {k: v for k, v in raw.items() if k in INPUT_FIELDS}
            event = protocol.LoginInput(session=session, **fields)
        except (ValueError, TypeError, AttributeError, ValidationError):
            await ws.send_json({"type": "error", "message": "not an input event"})
            continue
        await worker.send(event)


@routes.post("/api/accounts/import")
async def import_account(request: web.Request) -> web.Response:
    body = await read_json(request)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name (the new account's name) is required.", param="name")
    state = cookie_import.storage_state(body)
    if cookie_import.all_expired(state):
        raise InvalidRequest(
            "Every cookie has expired: export them again while signed in.", code="cookies_expired"
        )
    reply = await request.app[WORKER].ask(
        protocol.AccountImport(id=uuid.uuid4().hex, name=name, storage_state=state), IMPORT_S
    )
    assert isinstance(reply, protocol.AccountImported)
    if not reply.ok:
        raise InvalidRequest(f"The import was refused: {reply.error}", code="import_refused")
    return web.json_response({"account": reply.account, "object": "account"}, status=201)
