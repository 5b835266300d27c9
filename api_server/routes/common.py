"""What every dialect's routes share: reading the JSON body, and the worker's model list."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from api_server.app_keys import WORKER
from shared import protocol
from shared.errors import InvalidRequest, WorkerUnavailable


async def read_json(request: web.Request) -> Any:
    raw = await request.read()  # HTTPRequestEntityTooLarge -> 413 in the error middleware
    if not raw.strip():
        raise InvalidRequest("The request body is empty; expected a JSON object.", code="invalid_body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None


async def available_models(request: web.Request) -> list[protocol.ModelInfo]:
    status = await request.app[WORKER].status()
    if status.state not in ("ready", "busy", "degraded") or not status.models:
        reason = status.message or ("no models listed yet" if not status.models else status.state)
        raise WorkerUnavailable(
            f"The model list is not available: worker state is {status.state} ({reason}).",
            retry_after=10 if status.state != "login_required" else 60,
            code="login_required" if status.state == "login_required" else None,
        )
    return list(status.models)
