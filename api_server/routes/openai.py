"""The OpenAI surface: chat completions, models, and the queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from api_server.app_keys import CALLER, QUEUE, REQUEST_ID, STATE
from api_server.delivery import serve
from api_server.dialects import chat
from api_server.engine import Prepared
from api_server.render import CompletionBuilder
from api_server.routes import anthropic, gemini
from api_server.routes.common import available_models, read_json
from shared import protocol
from shared.errors import Cancelled, NotFound

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


# --------------------------------------------------------------------------- chat


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    arrived = asyncio.get_running_loop().time()
    spec, creq, body, legacy = chat.to_spec(await read_json(request))

    def renderer(prepared: Prepared) -> chat.ChatRenderer:
        builder = CompletionBuilder(
            req_id=request[REQUEST_ID],
            model=prepared.model,
            created=prepared.created,
            fingerprint=request.app[STATE].fingerprint,
            prompt_messages=body["messages"],
            legacy_functions=legacy,
        )
        return chat.ChatRenderer(
            builder,
            include_usage=creq.include_usage,
            tool_choice=prepared.job.tool_choice,
            response_format=prepared.job.response_format,
        )

    return await serve(request, spec, renderer, arrived=arrived)


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


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.StreamResponse:
    if gemini.gemini_client(request):
        return await gemini.list_models(request)
    if anthropic.anthropic_client(request):
        return await anthropic.list_models(request)
    created = int(request.app[STATE].started_at)
    models = await available_models(request)
    return web.json_response({"object": "list", "data": [model_object(m, created) for m in models]})


@routes.get("/v1/models/{model_id:.+}")
async def get_model(request: web.Request) -> web.StreamResponse:
    created = int(request.app[STATE].started_at)
    if gemini.gemini_client(request):
        return await gemini.get_model(request)
    if anthropic.anthropic_client(request):
        return await anthropic.get_model(request)
    wanted = request.match_info["model_id"].rsplit("/", 1)[-1]
    models = await available_models(request)
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
