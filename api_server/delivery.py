"""Running one request of any dialect and delivering its answer: whole, or as a stream.

``serve(request, spec, make_renderer)`` prepares and queues the ``JobSpec`` on the
engine, then follows the ticket's events into the dialect's ``Renderer``, which owns
every byte of the dialect's wire format. What every dialect gets alike:

* a failure before anything was sent is raised, so the error middleware answers it
  with its real status, ``Retry-After`` and the dialect's error shape — streams included;
* a stream's headers wait for the first answer event (``STREAM_HEADER_HOLD_S`` at most),
  then keep-alives (the renderer's own: an SSE comment, Anthropic's ``ping``…) follow
  every ``KEEPALIVE_S`` of silence; a later failure is the renderer's in-band error;
* a departed client cancels the job (``Cancelled`` / ``ConnectionResetError``, logged as
  499), and the ticket always leaves the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
from aiohttp import web

from api_server.answer import Answer
from api_server.app_keys import CALLER, CLIENT_REQUEST_ID, ENGINE, LIMITER, QUEUE, REQUEST_ID
from api_server.engine import KEEPALIVE, Engine, JobSpec, Prepared
from api_server.queue import Started, Ticket
from api_server.records import RECORD, RequestRecord, outcome_of
from api_server.sse import SSEWriter
from shared import protocol
from shared.errors import Cancelled, ServiceError

log = logging.getLogger(__name__)


class Renderer(Protocol):
    """One dialect's answer, event by event (sans-IO: returns bytes and objects, writes nothing)."""

    #: Content-Type of the stream.
    media_type: str

    @property
    def answer(self) -> Answer:
        """The answer as it grows (its tokens go to the request's record)."""
        ...

    def feed(self, event: protocol.Message) -> bytes:
        """Keep one worker event; the stream frames it produces (``b""`` for none)."""
        ...

    def keepalive(self) -> bytes:
        """Frames that keep an idle stream open."""
        ...

    def end(self) -> bytes:
        """The closing frames after the answer ended; raises ``ServiceError`` when it broke the request's
        rules (a required tool call missing, an answer that is not the JSON asked for)."""
        ...

    def failure(self, err: ServiceError) -> bytes:
        """The in-band error that ends a stream whose headers went out."""
        ...

    def body(self) -> tuple[Any, Mapping[str, str]]:
        """The whole answer and extra response headers; raises like ``end``."""
        ...


def json_response(obj: Any, headers: Mapping[str, str] | None = None, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(obj), content_type="application/json", headers=headers
    )


async def serve(
    request: web.Request,
    spec: JobSpec,
    make_renderer: Callable[[Prepared], Renderer],
    *,
    arrived: float,
) -> web.StreamResponse:
    """Prepare, queue and answer ``spec``; ``arrived`` is the loop time the request came in."""
    engine = request.app[ENGINE]
    req_id = request[REQUEST_ID]
    record = request.get(RECORD) or RequestRecord(req_id, "", None, 0.0, arrived)
    record.stream = spec.stream
    key_id = request[CALLER].key_id
    limiter = request.app[LIMITER]
    counted = limiter.admit(key_id, engine.resolve_model(spec.model, spec.model_param), spec.model)
    try:
        return await _run(request, spec, make_renderer, record, arrived)
    finally:
        if counted:
            limiter.release(key_id)
            limiter.spent(key_id, record.prompt_tokens + record.completion_tokens + record.reasoning_tokens)


async def _run(
    request: web.Request,
    spec: JobSpec,
    make_renderer: Callable[[Prepared], Renderer],
    record: RequestRecord,
    arrived: float,
) -> web.StreamResponse:
    engine = request.app[ENGINE]
    req_id = request[REQUEST_ID]
    prepared = await engine.prepare(req_id, spec)
    record.model = prepared.model
    ticket = engine.submit(
        req_id, prepared, owner=request[CALLER].key_id, client_request_id=request.get(CLIENT_REQUEST_ID)
    )
    record.mark("queued")
    renderer = make_renderer(prepared)
    log.info("request %s: %s model=%s stream=%s", req_id, request.path, prepared.model, ticket.stream)
    try:
        if ticket.stream:
            hold_until = arrived + engine.settings.stream_header_hold_s
            return await _stream(request, engine, ticket, renderer, record, hold_until=hold_until)
        return await _whole(request, engine, ticket, renderer, record)
    except asyncio.CancelledError:
        log.info("499: client of %s went away (%s)", req_id, ticket.state)
        raise
    finally:
        request.app[QUEUE].finish(ticket)
        _complete(record, ticket, renderer, engine)


def _complete(record: RequestRecord, ticket: Ticket, renderer: Renderer, engine: Engine) -> None:
    """What the record learns once the job is over: where it ran, the worker's stages, the tokens."""
    record.slot = ticket.slot
    record.worker = dict(ticket.timings)
    record.degraded = list(ticket.degraded)
    status = engine.worker.status_msg
    if ticket.slot and status is not None:
        record.account = next((s.account for s in status.slots if s.id == ticket.slot), None)
    if "started" in record.stages:
        tokens = renderer.answer.tokens()
        record.prompt_tokens, record.completion_tokens = tokens.prompt, tokens.output
        record.reasoning_tokens, record.tokens_estimated = tokens.reasoning, tokens.source != "wire"


def _note(record: RequestRecord, item: Started | protocol.Message) -> None:
    """Mark the record's stages from one of the ticket's items."""
    if isinstance(item, Started):
        record.mark("started")
    elif isinstance(item, protocol.Content | protocol.Reasoning | protocol.ToolCall):
        record.mark("first_token")
    elif isinstance(item, protocol.Finish) and item.capture:
        record.tier = item.capture


async def _whole(
    request: web.Request, engine: Engine, ticket: Ticket, renderer: Renderer, record: RequestRecord
) -> web.Response:
    try:
        async for item in engine.events(ticket, request):
            if isinstance(item, Started | protocol.Message):
                _note(record, item)
            if isinstance(item, protocol.Message):
                renderer.feed(item)
    except Cancelled as err:
        log.info("499: %s ended: %s", ticket.id, err.message)
        raise
    body, headers = renderer.body()
    return json_response(body, headers)


async def _stream(
    request: web.Request,
    engine: Engine,
    ticket: Ticket,
    renderer: Renderer,
    record: RequestRecord,
    *,
    hold_until: float,
) -> web.StreamResponse:
    sse = SSEWriter(request, content_type=renderer.media_type)
    loop = asyncio.get_running_loop()
    try:
        async for item in engine.events(ticket, request, keepalive_at=hold_until):
            if item is KEEPALIVE:
                if sse.prepared or loop.time() >= hold_until:
                    await sse.send(renderer.keepalive())
            elif isinstance(item, Started):
                _note(record, item)  # the first frames go out with the first answer event
            elif isinstance(item, protocol.Message):
                _note(record, item)
                if not sse.prepared:  # the page's stages so far go into the headers' server-timing
                    record.worker = dict(ticket.timings)
                    record.degraded = list(ticket.degraded)
                await sse.send(renderer.feed(item))
        await sse.send(renderer.end())
        await sse.close()
    except ConnectionResetError:
        log.info("499: client of %s disconnected during the stream", ticket.id)
        record.status, record.outcome = 499, "client_disconnected"
    except ServiceError as err:
        if not sse.prepared:
            raise  # nothing sent yet: a plain error with its status
        log.info("%s ended with %d %s: %s", ticket.id, err.status, err.code, err.message)
        record.status, record.outcome = err.status, outcome_of(err)
        await _send_failure(sse, renderer, err)
    except Exception:
        if not sse.prepared:
            raise  # the error middleware answers 500 naming the request id
        log.exception("stream of %s failed", ticket.id)
        internal = ServiceError(f"Internal server error (request id {ticket.id}); see the server log.")
        record.status, record.outcome = 500, outcome_of(internal)
        await _send_failure(sse, renderer, internal)
    return sse.response


async def _send_failure(sse: SSEWriter, renderer: Renderer, err: ServiceError) -> None:
    try:
        await sse.send(renderer.failure(err))
        await sse.close()
    except ConnectionResetError:
        pass
