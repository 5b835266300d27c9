"""The Gemini API surface: ``/v1beta/models`` and the model methods ``:generateContent``,
``:streamGenerateContent`` and ``:countTokens``, also under ``/v1`` (google-genai's default version).

``GET /v1/models`` answers in Gemini's shape when the request comes from a Gemini client
(``gemini_client``), in OpenAI's otherwise (``api_server/routes/openai.py`` asks).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any, cast

from aiohttp import web

from api_server.answer import prompt_text
from api_server.app_keys import ENGINE, REQUEST_ID
from api_server.delivery import json_response, serve
from api_server.dialects import gemini
from api_server.dialects.gemini_render import GeminiRenderer, model_object
from api_server.engine import Prepared
from api_server.middleware import error_response
from api_server.routes.common import available_models, read_json
from shared.errors import InvalidRequest, NotFound, ServiceError
from shared.tokens import estimate_tokens

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def gemini_client(request: web.Request) -> bool:
    """The request comes from a Gemini client: Google's key header, ``?key=`` or its client header."""
    headers = request.headers
    return "x-goog-api-key" in headers or "x-goog-api-client" in headers or "key" in request.query


def _target(request: web.Request) -> tuple[str, str]:
    """``{model}:{method}`` of the path, the method checked."""
    model, sep, method = request.match_info["target"].rpartition(":")
    if not sep or not model:
        raise NotFound(
            f"Invalid URL ({request.method} {request.path}): expected models/{{model}}:{{method}} with a "
            f"method of {', '.join(METHODS)}.",
            code="unknown_url",
        )
    if method not in METHODS:
        raise NotFound(
            f"Method '{method}' is not offered: use one of {', '.join(METHODS)}.", code="unknown_method"
        )
    return model, method


async def model_method(request: web.Request) -> web.StreamResponse:
    model, method = _target(request)
    alt = request.query.get("alt", "json")
    if alt not in ("json", "sse"):
        raise InvalidRequest(f"Invalid value at 'alt': {alt!r} (use json or sse).", param="alt")
    if method == "countTokens":
        return await count_tokens(request, model, await read_json(request))
    if method == "generateContent" or alt == "sse":
        return await generate(request, model, stream=method != "generateContent", sse=alt == "sse")
    try:
        return await generate(request, model, stream=True, sse=False)
    except ServiceError as err:
        # Google answers the JSON-array stream's errors as an array too: [{"error": {...}}]
        log.info("%s %s -> %d %s: %s", request.method, request.path, err.status, err.code, err.message)
        response = error_response(err, request.path)
        response.body = b"[" + cast(bytes, response.body) + b"]"
        return response


async def generate(request: web.Request, model: str, *, stream: bool, sse: bool) -> web.StreamResponse:
    arrived = asyncio.get_running_loop().time()
    parsed = gemini.to_spec(model, await read_json(request), stream=stream)

    def renderer(prepared: Prepared) -> GeminiRenderer:
        return GeminiRenderer(
            response_id=request[REQUEST_ID],
            model=prepared.model,
            prompt_messages=parsed.spec.messages,
            include_thoughts=parsed.include_thoughts,
            tool_choice=prepared.job.tool_choice,
            response_format=prepared.job.response_format,
            sse=sse,
        )

    return await serve(request, parsed.spec, renderer, arrived=arrived)


async def count_tokens(request: web.Request, model: str, body: Any) -> web.Response:
    """An estimate (``shared/tokens.py``) of the prompt's tokens; the model must exist."""
    inner = gemini.count_request(body)
    messages, _ = gemini.to_messages(inner)
    request.app[ENGINE].resolve_model(model)
    text = prompt_text(messages)
    # a long prompt is counted off the event loop, as the engine's context check does
    total = await asyncio.to_thread(estimate_tokens, text) if len(text) > 65_536 else estimate_tokens(text)
    return json_response(
        {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
    )


for _root in ("/v1beta", "/v1"):
    routes.post(f"{_root}/models/{{target}}")(model_method)


def _page(request: web.Request) -> tuple[int, int]:
    """(offset, size) from ``pageToken`` and ``pageSize``."""
    raw_size = request.query.get("pageSize", "")
    try:
        size = int(raw_size) if raw_size else DEFAULT_PAGE_SIZE
    except ValueError:
        raise InvalidRequest(f"Invalid value at 'page_size': {raw_size!r}.", param="pageSize") from None
    if size < 0:
        raise InvalidRequest("Invalid value at 'page_size': must not be negative.", param="pageSize")
    size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    token = request.query.get("pageToken", "")
    if not token:
        return 0, size
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest(
            "Invalid value at 'page_token': not a token of this list.", param="pageToken"
        ) from None
    return max(offset, 0), size


@routes.get("/v1beta/models")
async def list_models(request: web.Request) -> web.Response:
    offset, size = _page(request)
    models = await available_models(request)
    page = models[offset : offset + size]
    body: dict[str, Any] = {"models": [model_object(m) for m in page]}
    if offset + size < len(models):
        body["nextPageToken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
    return json_response(body)


@routes.get("/v1beta/models/{model_id}")
async def get_model(request: web.Request) -> web.Response:
    """One model (``models/`` before its id is taken, as ``GET /v1/models/models/x`` sends it)."""
    wanted = request.match_info["model_id"].rsplit("/", 1)[-1]
    models = await available_models(request)
    for m in models:
        if m.id == wanted:
            return json_response(model_object(m))
    raise NotFound(
        f"models/{wanted} is not found. Available models: {', '.join(m.id for m in models)}.",
        param="name",
        code="model_not_found",
    )
