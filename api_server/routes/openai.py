"""The OpenAI surface: chat completions, models, and the queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import web

from api_server.app_keys import CALLER, CHAT, CLIENT_REQUEST_ID, QUEUE, REQUEST_ID, STATE, WORKER
from api_server.chat import KEEPALIVE, ChatService, Prepared
from api_server.legacy_functions import to_tools as legacy_functions_to_tools
from api_server.queue import Started, Ticket
from api_server.render import CompletionBuilder, check_response_format, check_tool_choice
from api_server.sse import SSEWriter
from shared import protocol
from shared.errors import Cancelled, InvalidRequest, NotFound, ServiceError, WorkerUnavailable

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


async def read_json(request: web.Request) -> Any:
    raw = await request.read()  # HTTPRequestEntityTooLarge -> 413 in the error middleware
    if not raw.strip():
        raise InvalidRequest("The request body is empty; expected a JSON object.", code="invalid_body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None


# --------------------------------------------------------------------------- chat


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    arrived = asyncio.get_running_loop().time()
    chat = request.app[CHAT]
    req_id = request[REQUEST_ID]
    body, legacy_functions = legacy_functions_to_tools(await read_json(request))
    prepared = await chat.prepare(req_id, body)
    ticket = chat.submit(
        req_id, prepared, owner=request[CALLER].key_id, client_request_id=request.get(CLIENT_REQUEST_ID)
    )
    builder = CompletionBuilder(
        req_id=req_id,
        model=prepared.model,
        created=prepared.created,
        fingerprint=request.app[STATE].fingerprint,
        prompt_messages=body["messages"],
        legacy_functions=legacy_functions,
    )
    log.info("chat request %s: model=%s stream=%s", req_id, prepared.model, ticket.stream)
    try:
        if ticket.stream:
            return await _stream(
                request,
                chat,
                ticket,
                prepared,
                builder,
                hold_until=arrived + chat.settings.stream_header_hold_s,
            )
        return await _whole(request, chat, ticket, prepared, builder)
    except asyncio.CancelledError:
        log.info("499: client of %s went away (%s)", req_id, ticket.state)
        raise
    finally:
        request.app[QUEUE].finish(ticket)


async def _whole(
    request: web.Request, chat: ChatService, ticket: Ticket, prepared: Prepared, builder: CompletionBuilder
) -> web.Response:
    try:
        async for item in chat.events(ticket, request):
            if isinstance(item, protocol.Message):
                builder.feed(item)
    except Cancelled as err:
        log.info("499: %s ended: %s", ticket.id, err.message)
        raise
    check_tool_choice(prepared.job.tool_choice, builder.tool_calls)
    unfenced = check_response_format(prepared.job.response_format, builder.text)
    _, source = builder.usage()
    return web.json_response(
        builder.completion(unfenced),
        dumps=lambda obj: orjson.dumps(obj).decode(),
        headers={"x-usage-source": source},
    )


async def _stream(
    request: web.Request,
    chat: ChatService,
    ticket: Ticket,
    prepared: Prepared,
    builder: CompletionBuilder,
    *,
    hold_until: float,
) -> web.StreamResponse:
    """Stream the answer; the headers wait for the first answer event (``STREAM_HEADER_HOLD_S`` at most).

    A failure before the headers went out raises, so the error middleware answers it like a request
    that did not stream: its real status and ``Retry-After``. Once the hold is over the headers go out,
    keep-alive comments follow, and a failure is an in-band error event, then ``[DONE]``.
    """
    sse = SSEWriter(request)
    loop = asyncio.get_running_loop()
    try:
        async for item in chat.events(ticket, request, keepalive_at=hold_until):
            if item is KEEPALIVE:
                if sse.prepared or loop.time() >= hold_until:
                    await sse.comment("keep-alive")
            elif isinstance(item, Started):
                pass  # the role chunk goes out with the first answer event
            elif isinstance(item, protocol.Message):
                for chunk in builder.feed(item):
                    await sse.event(chunk)
        check_tool_choice(prepared.job.tool_choice, builder.tool_calls)
        check_response_format(prepared.job.response_format, builder.text)
        if not builder.role_sent:
            await sse.event(builder.start_chunk())
        await sse.event(builder.final_chunk())
        if prepared.request.include_usage:
            await sse.event(builder.usage_chunk())
        await sse.done()
    except ConnectionResetError:
        log.info("499: client of %s disconnected during the stream", ticket.id)
    except ServiceError as err:
        if not sse.prepared:
            raise  # nothing sent yet: a plain JSON error with its status
        log.info("%s ended with %d %s: %s", ticket.id, err.status, err.code, err.message)
        await _send_error(sse, err)
    except Exception:
        if not sse.prepared:
            raise  # the error middleware answers 500 naming the request id
        log.exception("stream of %s failed", ticket.id)
        await _send_error(
            sse, ServiceError(f"Internal server error (request id {ticket.id}); see the server log.")
        )
    return sse.response


async def _send_error(sse: SSEWriter, err: ServiceError) -> None:
    try:
        await sse.error(err)
        await sse.done()
    except ConnectionResetError:
        pass


# --------------------------------------------------------------------------- models


def model_object(m: protocol.ModelInfo, created: int) -> dict[str, Any]:
    return {
        "id": m.id,
        "object": "model",
        "created": created,
        "owned_by": "ai_studio",
        "display_name": m.display_name,
        "description": m.description,
        "input_token_limit": m.input_token_limit,
        "output_token_limit": m.output_token_limit,
        "context_window": m.input_token_limit,
        "max_output_tokens": m.output_token_limit,
        "thinking": m.thinking,
        "default_temperature": m.default_temperature,
        "default_top_p": m.default_top_p,
    }


async def _models(request: web.Request) -> list[protocol.ModelInfo]:
    status = await request.app[WORKER].status()
    if status.state not in ("ready", "busy", "degraded") or not status.models:
        reason = status.message or ("no models listed yet" if not status.models else status.state)
        raise WorkerUnavailable(
            f"The model list is not available: worker state is {status.state} ({reason}).",
            retry_after=10 if status.state != "login_required" else 60,
            code="login_required" if status.state == "login_required" else None,
        )
    return list(status.models)


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    created = int(request.app[STATE].started_at)
    models = await _models(request)
    return web.json_response({"object": "list", "data": [model_object(m, created) for m in models]})


@routes.get("/v1/models/{model_id:.+}")
async def get_model(request: web.Request) -> web.Response:
    created = int(request.app[STATE].started_at)
    wanted = request.match_info["model_id"].rsplit("/", 1)[-1]
    models = await _models(request)
    for m in models:
        if m.id == wanted:
            return web.json_response(model_object(m, created))
    raise NotFound(
        f"The model '{wanted}' does not exist. Valid models: {', '.join(m.id for m in models)}.",
        param="model",
        code="model_not_found",
    )


# --------------------------------------------------------------------------- queue


@routes.get("/v1/queue")
async def show_queue(request: web.Request) -> web.Response:
    caller = request[CALLER]
    rows = request.app[QUEUE].snapshot(lambda t: caller.may_see(t.owner))
    return web.json_response({"object": "list", "data": rows, "length": len(rows)})


@routes.post("/v1/cancel/{req_id}")
async def cancel_request(request: web.Request) -> web.Response:
    req_id = request.match_info["req_id"]
    queue = request.app[QUEUE]
    ticket = queue.get(req_id)
    if ticket is not None and not request[CALLER].may_see(ticket.owner):
        ticket = None  # another client's request: as unknown as an id that never existed
    state = ticket.state if ticket else None
    if (
        ticket is None
        or queue.cancel(req_id, Cancelled(f"Request {req_id} was cancelled through /v1/cancel.")) is None
    ):
        raise NotFound(
            f"No queued or running request with id '{req_id}'.", param="req_id", code="request_not_found"
        )
    log.info("cancel requested for %s (%s)", req_id, state)
    return web.json_response({"id": req_id, "object": "request.cancelled", "cancelled": True, "state": state})
