"""The simulator as a stream helper (the worker's ``HELPER_ENDPOINT`` capture tier).

Every GenerateContent answer is mirrored as it is written: the status, the
headers that matter (``Content-Type``, ``Content-Encoding``) and the body bytes
exactly as the browser receives them, still compressed. ``--helper-port`` serves
plain HTTP on the simulator's host with one route:

``GET /getStreamResponse?since=<unix seconds>[&wait=<seconds>]`` with the cookie
``SAPISID`` of a live session answers with the first mirrored response of that
account that started at or after ``since`` (less ``SINCE_MARGIN_S``), waiting up
to ``wait`` seconds (default 30) for it to start, and then streams it: what was
already written at once, the rest as it is written. A mirrored answer that the
upstream cut or the browser abandoned is cut the same way (no final chunk).
Without ``since`` it takes the newest answer still being written, else the next.

Answers of its own: 401 (no or unknown ``SAPISID``), 400 (bad query), 404 (no
answer started within ``wait``), each a small JSON ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from .state import SimState

#: An answer may start this long before the caller's ``since`` (clock granularity). Kept small:
#: the previous job's answer (a fast error, say) may have started well under a second earlier.
SINCE_MARGIN_S = 0.05
DEFAULT_WAIT_S = 30.0
MAX_WAIT_S = 300.0
#: Mirrors kept (oldest dropped first); each holds one answer's body.
KEEP = 16
ENDED_CLEANLY = ("complete", "error")


@dataclass(eq=False)
class Mirror:
    """One GenerateContent response as the browser receives it."""

    request_id: str
    account: str | None
    started_at: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    #: ``complete`` / ``error`` (ended normally), ``cut`` / ``client_closed`` (broken off).
    ended: str | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def begin(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = dict(headers)
        self._notify()

    def write(self, data: bytes) -> None:
        if data and self.ended is None:
            self.chunks.append(data)
            self._notify()

    def end(self, how: str) -> None:
        if self.ended is None:
            self.ended = how
            self._notify()

    async def changed(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class MirrorBook:
    """The recent mirrors, and a signal when a new one starts."""

    def __init__(self, keep: int = KEEP) -> None:
        self.mirrors: collections.deque[Mirror] = collections.deque(maxlen=keep)
        self._added = asyncio.Event()
        self.closed = False

    def start(self, request_id: str, account: str | None) -> Mirror:
        mirror = Mirror(request_id=request_id, account=account, started_at=time.time())
        self.mirrors.append(mirror)
        self._added.set()
        self._added = asyncio.Event()
        return mirror

    def find(self, account: str, since: float | None) -> Mirror | None:
        mine = [m for m in self.mirrors if m.account == account]
        if since is None:
            live = [m for m in mine if m.ended is None]
            return live[-1] if live else None
        for mirror in mine:
            if mirror.started_at >= since - SINCE_MARGIN_S:
                return mirror
        return None

    async def wait_for(self, account: str, since: float | None, wait_s: float) -> Mirror | None:
        if since is None:
            since_new = time.time()
            found = self.find(account, None)
            if found is not None:
                return found
            since = since_new
        deadline = asyncio.get_running_loop().time() + wait_s
        while not self.closed:
            found = self.find(account, since)
            if found is not None:
                return found
            added = self._added
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    await added.wait()
            except TimeoutError:
                return None
        return None

    def close(self) -> None:
        """Server shutdown: wake every waiting helper request (they end their answers)."""
        self.closed = True
        self._added.set()
        for mirror in self.mirrors:
            mirror.end("client_closed")


SIM: web.AppKey[SimState] = web.AppKey("sim")


def _error(status: int, message: str) -> web.Response:
    return web.Response(body=orjson.dumps({"error": message}), status=status, content_type="application/json")


def _float(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    value = float(raw)  # ValueError for the caller
    if value != value or value < 0:
        raise ValueError(name)
    return value


routes = web.RouteTableDef()


@routes.get("/getStreamResponse")
async def get_stream_response(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM]
    book = state.mirrors
    session = state.accounts.lookup_sapisid(request.cookies.get("SAPISID", ""))
    if session is None:
        state.log("helper_refused", reason="SAPISID")
        return _error(401, "the SAPISID cookie does not belong to a live session")
    try:
        since = _float(request.query, "since")
        wait = _float(request.query, "wait")
    except ValueError:
        return _error(400, "since and wait must be non-negative numbers (unix seconds, seconds)")
    wait_s = min(DEFAULT_WAIT_S if wait is None else wait, MAX_WAIT_S)
    mirror = await book.wait_for(session.email, since, wait_s)
    if mirror is None:
        state.log("helper_none", account=session.email, since=since)
        return _error(404, f"no GenerateContent answer started within {wait_s:g} s")
    while mirror.status is None and mirror.ended is None:
        await mirror.changed()
    state.log("helper_serve", account=session.email, request=mirror.request_id, since=since)
    response = web.StreamResponse(status=mirror.status or 502, headers=mirror.headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    try:
        while True:
            while sent < len(mirror.chunks):
                await response.write(mirror.chunks[sent])
                sent += 1
            if mirror.ended is not None:
                break
            await mirror.changed()
        if mirror.ended not in ENDED_CLEANLY:
            # Broken off upstream: break off here too, without the final chunk.
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    return response


def create_helper_app(state: SimState) -> web.Application:
    """The helper's own app (plain HTTP, its own port), sharing the simulator's state."""
    app = web.Application()
    app[SIM] = state
    app.add_routes(routes)
    return app
