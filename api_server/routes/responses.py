"""OpenAI's Responses API: ``POST /v1/responses`` and, for stored responses, ``GET`` / ``DELETE
/v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``.

A response is stored (``store``, true by default) with its owner's key id: another client key gets
404 for it, as for an id that never existed (``/v1/queue`` does the same).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from api_server.app_keys import CALLER, REQUEST_ID, RESPONSES
from api_server.delivery import json_response, serve
from api_server.dialects import responses
from api_server.dialects.responses_render import ResponsesRenderer, answer_message, item_id
from api_server.engine import Prepared
from api_server.response_store import Stored
from api_server.routes.common import read_json
from shared.errors import InvalidRequest, NotFound

routes = web.RouteTableDef()


async def _stored(request: web.Request, response_id: str, param: str = "response_id") -> Stored:
    found = await request.app[RESPONSES].get(response_id)
    if found is None or not request[CALLER].may_see(found.owner):
        raise NotFound(f"Response with id '{response_id}' not found.", param=param, code="not_found")
    return found


def _echo(req: responses.ResponsesRequest) -> dict[str, Any]:
    """The request's settings as the response object repeats them."""
    return {
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": None,
        "metadata": req.metadata,
        "parallel_tool_calls": req.parallel_tool_calls,
        "previous_response_id": req.previous_response_id,
        "reasoning": req.reasoning,
        "service_tier": "default",
        "store": req.store,
        "temperature": 1.0 if req.temperature is None else req.temperature,
        "text": {"format": req.text_format},
        "tool_choice": req.tool_choice,
        "tools": req.tools,
        "top_p": 1.0 if req.top_p is None else req.top_p,
        "truncation": "disabled",
        "user": None,
    }


@routes.post("/v1/responses")
async def create_response(request: web.Request) -> web.StreamResponse:
    arrived = asyncio.get_running_loop().time()
    body = await read_json(request)
    history: list[dict[str, Any]] = []
    previous = body.get("previous_response_id") if isinstance(body, dict) else None
    if isinstance(previous, str):
        history = (await _stored(request, previous, "previous_response_id")).conversation
    spec, req = responses.to_spec(body, history)
    owner = request[CALLER].key_id
    req_id = request[REQUEST_ID]

    def keep(final: dict[str, Any]) -> None:
        if not req.store:
            return
        items = [
            {"id": item_id("msg", req_id + ":input", i), **item} for i, item in enumerate(req.input_items)
        ]
        conversation = responses.conversation(spec, req, answer_message(final))
        request.app[RESPONSES].remember(Stored(final["id"], owner, final, items, conversation))

    def renderer(prepared: Prepared) -> ResponsesRenderer:
        return ResponsesRenderer(
            req_id=req_id,
            model=prepared.model,
            created=prepared.created,
            prompt_messages=spec.messages,
            echo=_echo(req),
            summary=req.summary,
            tool_choice=prepared.job.tool_choice,
            response_format=prepared.job.response_format,
            on_final=keep,
        )

    return await serve(request, spec, renderer, arrived=arrived)


@routes.get("/v1/responses/{response_id}")
async def get_response(request: web.Request) -> web.Response:
    if request.query.get("stream") in ("true", "1"):
        raise InvalidRequest("Streaming a stored response again is not supported.", param="stream")
    return json_response((await _stored(request, request.match_info["response_id"])).response)


@routes.delete("/v1/responses/{response_id}")
async def delete_response(request: web.Request) -> web.Response:
    found = await _stored(request, request.match_info["response_id"])
    await request.app[RESPONSES].delete(found.id)
    return json_response({"id": found.id, "object": "response", "deleted": True})


@routes.get("/v1/responses/{response_id}/input_items")
async def input_items(request: web.Request) -> web.Response:
    """The stored input items, newest first unless ``order=asc``; ``limit`` (1-100, 20), ``after``, ``before``."""
    items = list((await _stored(request, request.match_info["response_id"])).input_items)
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", param="order", code="invalid_value")
    if order == "desc":
        items.reverse()
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise InvalidRequest("limit must be an integer from 1 to 100.", param="limit", code="invalid_value")
    ids = [item["id"] for item in items]
    for name in ("after", "before"):
        cursor = request.query.get(name)
        if cursor is None:
            continue
        if cursor not in ids:
            raise InvalidRequest(f"No input item with id '{cursor}'.", param=name, code="invalid_value")
        at = ids.index(cursor)
        items, ids = (items[at + 1 :], ids[at + 1 :]) if name == "after" else (items[:at], ids[:at])
    page = items[:limit]
    return json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )
