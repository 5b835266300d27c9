"""Anthropic's Messages API: ``POST /v1/messages``, ``POST /v1/messages/count_tokens`` and, for requests
that carry ``anthropic-version``, ``GET /v1/models`` in Anthropic's shape (``api_server/routes/openai.py``
asks ``anthropic_client``). Keys come as ``x-api-key`` or ``Authorization: Bearer``; the
``anthropic-version`` and ``anthropic-beta`` headers and ``?beta=true`` are accepted.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from aiohttp import web

from api_server.answer import prompt_text
from api_server.app_keys import ENGINE, REQUEST_ID, STATE
from api_server.delivery import json_response, serve
from api_server.dialects import anthropic
from api_server.dialects.anthropic_render import AnthropicRenderer
from api_server.engine import Prepared
from api_server.routes.common import available_models, read_json
from shared import protocol
from shared.errors import NotFound
from shared.tokens import estimate_tokens

routes = web.RouteTableDef()


def anthropic_client(request: web.Request) -> bool:
    return "anthropic-version" in request.headers


@routes.post("/v1/messages")
async def create_message(request: web.Request) -> web.StreamResponse:
    arrived = asyncio.get_running_loop().time()
    spec = anthropic.to_spec(await read_json(request))

    def renderer(prepared: Prepared) -> AnthropicRenderer:
        return AnthropicRenderer(
            req_id=request[REQUEST_ID],
            model=prepared.model,
            prompt_messages=spec.messages,
            tool_choice=prepared.job.tool_choice,
        )

    return await serve(request, spec, renderer, arrived=arrived)


@routes.post("/v1/messages/count_tokens")
async def count_tokens(request: web.Request) -> web.Response:
    """An estimate of the prompt's tokens (``shared/tokens.py``): what the same body would send."""
    body = await read_json(request)
    if isinstance(body, dict):
        body = {**body, "max_tokens": body.get("max_tokens") or 1 << 20}
    spec = anthropic.to_spec(body)
    request.app[ENGINE].resolve_model(spec.model)
    text = prompt_text(spec.messages) + "".join(str(t) for t in spec.tools or [])
    return json_response({"input_tokens": await asyncio.to_thread(estimate_tokens, text)})


def model_object(m: protocol.ModelInfo, created: float) -> dict[str, Any]:
    when = datetime.datetime.fromtimestamp(created, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": m.id, "display_name": m.display_name, "created_at": when}


async def list_models(request: web.Request) -> web.Response:
    created = request.app[STATE].started_at
    data = [model_object(m, created) for m in await available_models(request)]
    return json_response(
        {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


async def get_model(request: web.Request) -> web.Response:
    wanted = request.match_info["model_id"].rsplit("/", 1)[-1]
    models = await available_models(request)
    for m in models:
        if m.id == request.app[ENGINE].alias(wanted):
            return json_response(model_object(m, request.app[STATE].started_at))
    raise NotFound(
        f"model: {wanted}. Available models: {', '.join(m.id for m in models)}.",
        param="model",
        code="model_not_found",
    )
