"""Cross-origin access for browser clients of ``/v1/*`` (``CORS_ORIGINS``).

Default: no origin is allowed, so a web page cannot read this server's answers. Listed origins get
preflights answered (``cors_middleware``, before the key check: a preflight carries no key) and the CORS
headers on every ``/v1`` answer, streams and errors included (``add_cors_headers`` on
``on_response_prepare``, which runs for every response before its headers go out). ``*`` is accepted only
while API keys are required (settings refuse it without ``ADMIN_KEY``, and it is not honoured while no
client key exists), since a keyless server would then serve any web page.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

from api_server.app_keys import CLIENT_KEYS, SETTINGS
from api_server.auth import is_client_api
from api_server.middleware import error_response
from shared.errors import PermissionDenied

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
#: Request headers a browser client may send (SDKs add ``x-stainless-*``; Anthropic's adds its version).
_ALLOWED_HEADER = re.compile(
    r"^(authorization|content-type|x-api-key|x-request-id|openai-organization|openai-project|openai-beta"
    r"|anthropic-version|anthropic-beta|anthropic-dangerous-direct-browser-access|x-goog-api-key|x-goog-api-client"
    r"|x-stainless-[a-z0-9-]+)$"
)
EXPOSED_HEADERS = "x-request-id, x-client-request-id, x-usage-source, x-aistudio-degraded, retry-after"
MAX_AGE_S = "600"


def _covered(request: web.Request) -> bool:
    return is_client_api(request.path)


def allowed_origin(request: web.Request) -> str | None:
    """The value for ``Access-Control-Allow-Origin``, or None when this request's origin is not allowed."""
    origin = request.headers.get("Origin")
    origins = request.app[SETTINGS].cors_origin_list
    if not origin or not origins or not _covered(request):
        return None
    if origin in origins:
        return origin
    if "*" in origins and request.app[CLIENT_KEYS].has_keys:
        return "*"
    return None


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a CORS preflight (204 for an allowed origin, 403 otherwise) before keys are checked."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return await handler(request)
    if not _covered(request):
        return await handler(request)
    origin = allowed_origin(request)
    if origin is None:
        return error_response(
            PermissionDenied(
                "This origin may not use this server (see CORS_ORIGINS).", code="cors_origin_not_allowed"
            ),
            request.path,
        )
    asked = [h.strip().lower() for h in request.headers.get("Access-Control-Request-Headers", "").split(",")]
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ", ".join(h for h in asked if _ALLOWED_HEADER.match(h)),
            "Access-Control-Max-Age": MAX_AGE_S,
        },
    )


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the CORS headers on every answer to an allowed origin."""
    origin = allowed_origin(request)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if origin != "*":
        response.headers.add("Vary", "Origin")
