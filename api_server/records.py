"""One record per generation request of every dialect: who asked, what ran where, how long each stage took.

``record_middleware`` opens a ``RequestRecord`` when a generation request arrives (chat completions,
Anthropic messages, Responses, Gemini generateContent and its stream), ``delivery.serve`` fills in
what the engine learns (model, slot, capture tier, tokens, the stages), and when the response is
over, however it ended, the middleware closes the record and hands it to every ``Observer`` (the
usage ledger, the metrics, the recent-requests list behind ``GET /api/requests/{id}``). Observers
must not block: the ledger only queues the row for its writer thread.

Stages are milliseconds since the request arrived, on the API server's clock: ``queued`` (accepted
into the queue), ``started`` (a page took it; the wait before is the queue wait), ``first_token``
(the first answer event), ``finished``. The worker's own stages of the run (``settings``, ``fill``,
``submit``, ``first_event``: milliseconds since the page took the job) are kept apart under ``worker``:
it reports the first three as they happen (``stage`` messages) and all of them with its ``done`` event.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aiohttp import web

from shared.errors import ServiceError

log = logging.getLogger(__name__)

#: Generation paths and their dialect (POST only).
_GEMINI_GENERATE = re.compile(r"^/v1(beta)?/models/[^/]+:(generateContent|streamGenerateContent)$")
_DIALECT_PATHS = {"/v1/chat/completions": "chat", "/v1/messages": "anthropic", "/v1/responses": "responses"}

#: How many finished records ``RecentRequests`` keeps for ``GET /api/requests/{id}``.
RECENT = 1000


def dialect_of(request: web.Request) -> str | None:
    """The dialect of a generation request, or None for any other request."""
    if request.method != "POST":
        return None
    path = request.path
    if path in _DIALECT_PATHS:
        return _DIALECT_PATHS[path]
    return "gemini" if _GEMINI_GENERATE.match(path) else None


@dataclass
class RequestRecord:
    id: str
    dialect: str
    key_id: str | None
    #: Wall-clock arrival (``time.time()``) and the loop time it matches.
    at: float
    arrived: float
    model: str | None = None
    stream: bool = False
    status: int = 0
    #: ``ok``, the error's code, ``cancelled`` or ``client_disconnected``.
    outcome: str = ""
    slot: str | None = None
    account: str | None = None
    tier: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    tokens_estimated: bool = True
    stages: dict[str, float] = field(default_factory=dict)
    worker: dict[str, float] = field(default_factory=dict)
    #: The run settings the job ran without (degraded mode: the ``x-aistudio-degraded`` header).
    degraded: list[str] = field(default_factory=list)

    def mark(self, stage: str, now: float | None = None) -> None:
        """Note the first time ``stage`` was reached (ms since arrival)."""
        if stage not in self.stages:
            when = asyncio.get_running_loop().time() if now is None else now
            self.stages[stage] = round((when - self.arrived) * 1000, 3)

    @property
    def queue_ms(self) -> float | None:
        started, queued = self.stages.get("started"), self.stages.get("queued")
        return None if started is None or queued is None else round(started - queued, 3)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("arrived")
        out["queue_ms"] = self.queue_ms
        return out


class Observer(Protocol):
    def finished(self, record: RequestRecord) -> None:
        """Take one closed record; must not block."""
        ...


class RecentRequests:
    """The last ``RECENT`` closed records by id (the timelines of ``GET /api/requests/{id}``)."""

    def __init__(self, size: int = RECENT) -> None:
        self._records: collections.OrderedDict[str, RequestRecord] = collections.OrderedDict()
        self.size = size

    def finished(self, record: RequestRecord) -> None:
        self._records[record.id] = record
        while len(self._records) > self.size:
            self._records.popitem(last=False)

    def get(self, request_id: str) -> RequestRecord | None:
        return self._records.get(request_id)

    def latest(self, count: int) -> list[RequestRecord]:
        """The last ``count`` closed records, newest first."""
        return list(reversed(self._records.values()))[:count]


def close(record: RequestRecord, status: int, outcome: str, observers: list[Observer]) -> None:
    record.status = status
    record.outcome = outcome
    record.mark("finished")
    for observer in observers:
        try:
            observer.finished(record)
        except Exception:
            log.exception("recording request %s failed", record.id)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def outcome_of(err: ServiceError) -> str:
    return err.code or err.kind


def open_record(request: web.Request, request_id: str, key_id: str | None) -> RequestRecord | None:
    """A new record for a generation request (None for other requests)."""
    dialect = dialect_of(request)
    if dialect is None:
        return None
    return RequestRecord(
        id=request_id,
        dialect=dialect,
        key_id=key_id,
        at=time.time(),
        arrived=asyncio.get_running_loop().time(),
    )


#: Where ``record_middleware`` keeps the open record of a generation request.
RECORD = web.RequestKey("record", RequestRecord)


def record_middleware(observers: list[Observer]) -> Any:
    """Open a record for each generation request, close it with the status it ended with (inside the
    error middleware: a ``ServiceError`` still on its way to becoming a response counts with its status)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        from api_server.app_keys import CALLER, REQUEST_ID

        record = open_record(request, request[REQUEST_ID], None)
        if record is None:
            return await handler(request)
        request[RECORD] = record
        status, outcome = 500, "internal_error"
        try:
            response = await handler(request)
            status = record.status or response.status  # a stream's in-band failure keeps its own
            outcome = record.outcome or ("ok" if status < 400 else "error")
            return response
        except ServiceError as err:
            status, outcome = err.status, outcome_of(err)
            raise
        except web.HTTPException as exc:
            status, outcome = exc.status, "http_error"
            raise
        except asyncio.CancelledError:
            status, outcome = 499, record.outcome or "client_disconnected"
            raise
        finally:
            caller = request.get(CALLER)
            record.key_id = caller.key_id if caller is not None else None
            close(record, status, outcome, observers)

    return middleware


#: Server-Timing metrics: (name, description, where the value is).
_TIMINGS = (
    ("queue", "queue wait"),
    ("settings", "run settings applied (since a page took it)"),
    ("submit", "prompt submitted (since a page took it)"),
    ("upstream", "first byte from AI Studio (since a page took it)"),
    ("first-token", "first answer event (since arrival)"),
)


#: Names the run settings an answer was produced without (degraded mode).
DEGRADED_HEADER = "x-aistudio-degraded"


def server_timing(record: RequestRecord) -> str:
    """The ``server-timing`` header value of what the record knows when the headers go out."""
    values = {
        "queue": record.queue_ms,
        "settings": record.worker.get("settings"),
        "submit": record.worker.get("submit"),
        "upstream": record.worker.get("first_event"),
        "first-token": record.stages.get("first_token"),
    }
    return ", ".join(
        f'{name};dur={values[name]:.1f};desc="{desc}"' for name, desc in _TIMINGS if values[name] is not None
    )


async def add_server_timing(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: a generation request's answer carries its ``server-timing``, and
    ``x-aistudio-degraded`` when it ran without some run settings (docs/selectors.md)."""
    record = request.get(RECORD)
    if record is not None:
        value = server_timing(record)
        if value:
            response.headers["server-timing"] = value
        if record.degraded:
            response.headers[DEGRADED_HEADER] = ", ".join(record.degraded)
