"""Operator surface: health, info, client keys and the OpenAPI document."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from api_server.app_keys import CLIENT_KEYS, QUEUE, SETTINGS, STATE, WORKER
from api_server.key_limits import LIMIT_FIELDS, KeyLimits
from api_server.openapi import openapi_document
from shared import answer, channel, protocol
from shared.errors import InvalidRequest, NotFound, WorkerUnavailable

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

ENDPOINTS = [
    "POST /v1/chat/completions",
    "GET /v1/models",
    "GET /v1/models/{id}",
    "GET /v1/queue",
    "POST /v1/cancel/{req_id}",
    "GET /health",
    "GET /api/info",
    "GET|POST|DELETE /api/keys",
    "GET /api/accounts",
    "POST /api/accounts/{name}/disable|enable",
    "POST /api/selectors/reload",
    "GET /dashboard",
    "GET /api/events",
    "GET /api/snapshots",
    "POST /api/control/restart/{stream_proxy|browser_worker}",
    "POST /api/control/doctor",
    "GET /openapi.json",
]


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    state = request.app[STATE]
    components: dict[str, dict[str, Any]] = {
        "api": {"state": "stopping" if state.stopping else "ok", "version": state.version},
    }
    healthy = not state.stopping
    try:
        status = await request.app[WORKER].status(timeout=2.0)
        components["worker"] = {
            "state": status.state,
            "message": status.message,
            "logged_in": status.state != "login_required",
            "model": status.model,
            "capture": status.capture,
            "last_error": status.last_error,
            "pages": status.capacity,
            "slots": [s.model_dump() for s in status.slots],
            "accounts": [a.model_dump() for a in status.accounts],
            "self_test": status.self_test,
            "selectors": status.selectors.model_dump(),
        }
        healthy &= status.state in ("ready", "busy")
    except WorkerUnavailable as exc:
        components["worker"] = {"state": "disconnected", "message": exc.message, "logged_in": None}
        healthy = False
    if settings.stream_port == 0:
        source = "the stream helper, else the DOM" if settings.helper_endpoint else "the DOM"
        components["stream_proxy"] = {
            "state": "disabled",
            "message": f"STREAM_PORT=0: answers come from {source}",
        }
    else:
        try:
            pong = await channel.ping(settings.proxy_socket, timeout=2.0)
            components["stream_proxy"] = {"state": "ok", "pid": pong.pid, "version": pong.version}
        except (OSError, TimeoutError, protocol.FrameError) as exc:
            components["stream_proxy"] = {
                "state": "down",
                "message": f"{type(exc).__name__}: {exc}".rstrip(": "),
            }
            healthy = False
    body = {
        "status": "ok" if healthy else "unhealthy",
        "components": components,
        "queue_length": len(request.app[QUEUE]),
    }
    headers = {} if healthy else {"Retry-After": "5"}
    return web.json_response(body, status=200 if healthy else 503, headers=headers)


@routes.get("/api/info")
async def info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    state = request.app[STATE]
    worker = request.app[WORKER]
    status = worker.status_msg
    base = f"{request.scheme}://{request.host}"
    return web.json_response(
        {
            "name": "aistudio-proxy",
            "version": state.version,
            "base_url": f"{base}/v1",
            "endpoints": ENDPOINTS,
            "current_model": status.model if status else None,
            "worker_state": status.state if status else "disconnected",
            "queue_length": len(request.app[QUEUE]),
            "api_key_required": request.app[CLIENT_KEYS].has_keys,
            "capture_mode": answer.capture_label(
                stream=bool(settings.stream_port), helper=bool(settings.helper_endpoint)
            ),
            "demo_mode": settings.demo_mode,
            "system_fingerprint": state.fingerprint,
            "pages": status.capacity if status else None,
            "accounts": [a.model_dump() for a in status.accounts] if status else [],
        }
    )


# --------------------------------------------------------------------------- accounts


@routes.get("/api/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    status = await request.app[WORKER].status()
    return web.json_response(
        {
            "object": "list",
            "data": [a.model_dump() for a in status.accounts],
            "slots": [s.model_dump() for s in status.slots],
        }
    )


@routes.post(r"/api/accounts/{name}/{action:disable|enable}")
async def account_action(request: web.Request) -> web.Response:
    """Drain an account (running requests finish, no new ones start, its pages close) or serve with it again."""
    name, action = request.match_info["name"], request.match_info["action"]
    worker = request.app[WORKER]
    known = [a.name for a in (await worker.status()).accounts]
    if name not in known:
        raise NotFound(
            f"No account named {name!r}. Accounts: {', '.join(known) or 'none'}.",
            param="name",
            code="account_not_found",
        )
    await worker.send(protocol.AccountAction(account=name, action=action))  # type: ignore[arg-type]
    wanted = ("disabled", "draining") if action == "disable" else ("ready", "busy", "starting", "cooling")
    account = await worker.wait_status(
        lambda s: next((a for a in s.accounts if a.name == name and a.state in wanted), None)
    )
    return web.json_response(account.model_dump())


# --------------------------------------------------------------------------- selectors


@routes.post("/api/selectors/reload")
async def reload_selectors(request: web.Request) -> web.Response:
    """Read SELECTORS_FILE again and use it (docs/selectors.md); a refused file changes nothing (400)."""
    result = await request.app[WORKER].reload_selectors()
    if not result.ok:
        raise InvalidRequest(
            f"The selectors file was refused; the selectors in use stay: {result.error}",
            code="selectors_refused",
        )
    return web.json_response(
        {
            "ok": True,
            "file": str(request.app[SETTINGS].selectors_file),
            "overrides": result.overrides,
            "changed": result.changed,
        }
    )


# --------------------------------------------------------------------------- keys


@routes.get("/api/keys")
async def list_keys(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": request.app[CLIENT_KEYS].public()})


async def _key_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    label = body.get("label", "")
    if not isinstance(label, str) or len(label) > 200:
        raise InvalidRequest("'label' must be a string of at most 200 characters.", param="label")
    return body


def _checked_limits(body: dict[str, Any]) -> KeyLimits:
    """The limits ``body`` sets, checked (400 naming the first bad one)."""
    try:
        return KeyLimits.model_validate({k: body[k] for k in LIMIT_FIELDS if k in body})
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidRequest(f"'{param}': {first['msg']}.", param=param, code="invalid_value") from None


@routes.post("/api/keys")
async def create_key(request: web.Request) -> web.Response:
    body = await _key_body(request)
    limits = _checked_limits(body)
    record, key = request.app[CLIENT_KEYS].create(body.get("label", ""), limits)
    return web.json_response({**record, "key": key}, status=201)


@routes.patch("/api/keys/{key_id}")
async def change_key(request: web.Request) -> web.Response:
    """Change a key's label or limits; a limit given as null is removed."""
    key_id = request.match_info["key_id"]
    body = await _key_body(request)
    limits = _checked_limits(body)
    changes = {k: getattr(limits, k) for k in LIMIT_FIELDS if k in body}
    if "label" in body:
        changes["label"] = body["label"]
    record = request.app[CLIENT_KEYS].update(key_id, changes)
    if record is None:
        raise NotFound(f"No client key with id '{key_id}'.", param="id", code="key_not_found")
    return web.json_response(record)


async def _delete(request: web.Request, key_id: str | None) -> web.Response:
    if not key_id:
        raise InvalidRequest(
            'Name the key to delete: DELETE /api/keys/{id} or a JSON body {"id": ...}.', param="id"
        )
    if not request.app[CLIENT_KEYS].delete(key_id):
        raise NotFound(f"No client key with id '{key_id}'.", param="id", code="key_not_found")
    return web.json_response({"id": key_id, "deleted": True})


@routes.delete("/api/keys")
async def delete_key(request: web.Request) -> web.Response:
    key_id = request.query.get("id")
    raw = await request.read()
    if not key_id and raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
        key_id = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
    return await _delete(request, key_id)


@routes.delete("/api/keys/{key_id}")
async def delete_key_by_path(request: web.Request) -> web.Response:
    return await _delete(request, request.match_info["key_id"])


# --------------------------------------------------------------------------- openapi


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(f"{request.scheme}://{request.host}"))
