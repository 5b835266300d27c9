"""The error middleware (every failure -> an OpenAI error body) and the key checks.

``error_middleware`` is outermost: it gives each request a new id of the
server's own (a client's ``x-request-id`` is only echoed back, as
``x-client-request-id``), puts it on log lines and on the response, renders ``ServiceError`` and aiohttp's HTTP exceptions in the OpenAI
shape, and turns anything else into a 500 that names the request id, never a
traceback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from api_server.app_keys import AUTH_LIMITER, CALLER, CLIENT_KEYS, CLIENT_REQUEST_ID, REQUEST_ID, SETTINGS
from api_server.auth import EVERYONE, Caller, is_client_api, presented_key, same_secret
from api_server.dialects.errors import shape_for
from shared import logging as shared_logging
from shared.errors import (
    AuthenticationFailed,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceError,
)

log = logging.getLogger(__name__)

_SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

#: What this server offers, named in the 404 of every other path.
OFFERED = (
    "POST /v1/chat/completions, GET /v1/models, GET /v1/models/{model}, GET /v1/queue, POST /v1/cancel/{id}, "
    "POST /v1/responses, GET|DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items, "
    "POST /v1/messages, POST /v1/messages/count_tokens, "
    "GET /v1beta/models, POST /v1beta/models/{model}:generateContent (also :streamGenerateContent, "
    ":countTokens, and under /v1)"
)

REASONS = {499: "Client Closed Request"}
#: Routes (and everything under them) that only the admin key opens.
ADMIN_PATHS = (
    "/api/keys",
    "/api/accounts",
    "/api/selectors",
    "/api/events",
    "/api/snapshots",
    "/api/control",
)
#: Paths that the admin key sees in full and a client key for its own requests only.
OBSERVER_PATHS = ("/api/usage", "/api/requests")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def error_response(err: ServiceError, path: str = "", method: str = "POST") -> web.Response:
    """The error in the shape of the dialect that ``path`` belongs to (OpenAI's by default); its ids are
    added by ``add_request_ids`` like on every answer."""
    headers: dict[str, str] = {}
    after = err.retry_after  # the instance's, else its class's default (shared/errors.py)
    if after is not None:
        headers["Retry-After"] = str(max(1, round(after)))
    status, body = shape_for(path, method)(err)
    return web.Response(
        status=status,
        reason=REASONS.get(status),
        body=orjson.dumps(body),
        content_type="application/json",
        headers=headers,
    )


class MethodNotAllowed(ServiceError):
    """The path exists but not with this HTTP method."""

    kind = "method_not_allowed"
    status = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


def _endpoint_error(request: web.Request) -> ServiceError:
    """OpenAI's own answer to a path it does not know: 404 ``invalid_request_error`` (not a 5xx, which SDKs
    retry), here with ``code: "unknown_url"`` and the endpoints this server offers."""
    return NotFound(
        f"Invalid URL ({request.method} {request.path}): this server does not offer that endpoint. "
        f"It offers {OFFERED}.",
        code="unknown_url",
    )


def _translate_http(exc: web.HTTPException, request: web.Request) -> ServiceError:
    if isinstance(exc, web.HTTPNotFound):
        return _endpoint_error(request)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(f"Method {request.method} is not allowed for {request.path}; use {allowed}.")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = request.app[SETTINGS].max_request_bytes
        return PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
    err = ServiceError(exc.text or exc.reason, status=exc.status, code=None)
    err.error_type = "invalid_request_error" if exc.status < 500 else "server_error"
    return err


async def add_request_ids(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer, streams included, names its request (and echoes the client's id)."""
    if REQUEST_ID in request:
        response.headers["x-request-id"] = request[REQUEST_ID]
    if CLIENT_REQUEST_ID in request:
        response.headers["x-client-request-id"] = request[CLIENT_REQUEST_ID]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    req_id = new_request_id()  # always the server's own: a client's id never keys internal state
    request[REQUEST_ID] = req_id
    given = request.headers.get("x-request-id", "")
    if _SANE_ID.match(given):
        request[CLIENT_REQUEST_ID] = given
    token = shared_logging.request_id.set(req_id)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            err = _translate_http(exc, request)
            log.info("%s %s -> %d %s", request.method, request.path, err.status, err.code)
            response = error_response(err, request.path, request.method)
        except ServiceError as err:
            log.info("%s %s -> %d %s: %s", request.method, request.path, err.status, err.code, err.message)
            response = error_response(err, request.path, request.method)
        except asyncio.CancelledError:
            log.info("%s %s -> 499 client went away", request.method, request.path)
            raise
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            response = error_response(
                ServiceError(f"Internal server error (request id {req_id}); see the server log."),
                request.path,
                request.method,
            )
        return response
    finally:
        shared_logging.request_id.reset(token)


class UnsupportedMediaType(ServiceError):
    """A request body that is not JSON (a browser sends text/plain or form bodies cross-site unasked)."""

    kind = "unsupported_media_type"
    status = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class HostNotAllowed(ServiceError):
    """A Host header this server does not answer to (DNS rebinding)."""

    kind = "host_not_allowed"
    status = 421
    error_type = "invalid_request_error"
    default_code = "host_not_allowed"


def _host_name(host: str) -> str:
    """The name part of a Host header value, lower case, without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a Host the server does not answer to (421) and a request body that is not JSON (415)."""
    allowed = request.app[SETTINGS].allowed_host_names
    name = _host_name(request.headers.get("Host", ""))
    if "*" not in allowed and name not in allowed:
        raise HostNotAllowed(
            f"This server does not answer to the host {shared_logging.escape_control(name)!r}; add it to "
            "ALLOWED_HOSTS if you reach the server under that name."
        )
    if (request.content_length or request.body_exists) and not _is_json(request.content_type):
        raise UnsupportedMediaType(
            f"Request bodies must be JSON (Content-Type: application/json), not {request.content_type!r}."
        )
    return await handler(request)


def _refuse_locked_out(request: web.Request) -> None:
    left = request.app[AUTH_LIMITER].retry_after(request.remote or "")
    if left is not None:
        raise RateLimited(
            "Too many failed key attempts from this address; try again later.",
            retry_after=left,
            code="too_many_failed_auth",
        )


def _failed(request: web.Request, err: AuthenticationFailed) -> AuthenticationFailed:
    request.app[AUTH_LIMITER].failed(request.remote or "")
    return err


def _observer(request: web.Request) -> Caller:
    """Who reads usage or timelines: the admin key sees everything, a client key its own requests; with
    no key configured at all (local keyless mode) anybody sees everything."""
    admin = request.app[SETTINGS].admin_key
    store = request.app[CLIENT_KEYS]
    if admin is None and not store.has_keys:
        return EVERYONE
    _refuse_locked_out(request)
    key = presented_key(request)
    if admin is not None and same_secret(key, admin.get_secret_value()):
        return EVERYONE
    key_id = store.identify(key)
    if key_id is None:
        raise _failed(
            request,
            AuthenticationFailed(
                "Invalid or missing key (send Authorization: Bearer <ADMIN_KEY or a client key>)."
            ),
        )
    return Caller(key_id)


def _check_metrics_access(request: web.Request) -> None:
    """``/metrics`` wants the admin key; without one it is open only on loopback with no client keys."""
    settings = request.app[SETTINGS]
    admin = settings.admin_key
    if admin is None:
        if settings.api_host in LOOPBACK and not request.app[CLIENT_KEYS].has_keys:
            return
        raise PermissionDenied(
            "Set ADMIN_KEY to read /metrics (it is open only on loopback while no client key exists).",
            code="admin_key_not_configured",
        )
    _refuse_locked_out(request)
    if not same_secret(presented_key(request), admin.get_secret_value()):
        raise _failed(
            request,
            AuthenticationFailed("Invalid or missing admin key (send Authorization: Bearer <ADMIN_KEY>)."),
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    area = next((p for p in ADMIN_PATHS if path == p or path.startswith(p + "/")), None)
    if area is not None:
        admin = request.app[SETTINGS].admin_key
        if admin is None:
            raise PermissionDenied(
                f"Administration is disabled: set ADMIN_KEY to enable {area}.",
                code="admin_key_not_configured",
            )
        _refuse_locked_out(request)
        if not same_secret(presented_key(request), admin.get_secret_value()):
            raise _failed(
                request,
                AuthenticationFailed(
                    "Invalid or missing admin key (send Authorization: Bearer <ADMIN_KEY>)."
                ),
            )
    elif any(path == p or path.startswith(p + "/") for p in OBSERVER_PATHS):
        request[CALLER] = _observer(request)
    elif path == "/metrics":
        _check_metrics_access(request)
    elif is_client_api(path):
        store = request.app[CLIENT_KEYS]
        request[CALLER] = EVERYONE
        if store.has_keys:
            _refuse_locked_out(request)
            key = presented_key(request, from_query=True)
            admin = request.app[SETTINGS].admin_key
            if not (admin is not None and same_secret(key, admin.get_secret_value())):
                key_id = store.identify(key)
                if key_id is None:
                    raise _failed(
                        request,
                        AuthenticationFailed(
                            "Invalid or missing API key (send Authorization: Bearer <key>, x-api-key or x-goog-api-key)."
                        ),
                    )
                request[CALLER] = Caller(key_id)
    return await handler(request)
