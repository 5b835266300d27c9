"""The simulator's aiohttp application: host-routed page, login, RPC and inspection surfaces."""

from __future__ import annotations

import asyncio
import html
import logging
import mimetypes
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from aiohttp import web

from . import model, wire
from .helper import Mirror
from .state import (
    HTTP_ONLY_EXEMPT,
    AccountStore,
    ConfigError,
    Session,
    SimState,
    storage_state,
    validate_config_update,
)

log = logging.getLogger(__name__)

AISTUDIO_HOST = "aistudio.google.com"
RPC_HOST = "alkalimakersuite-pa.clients6.google.com"
ACCOUNTS_HOST = "accounts.google.com"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
ORIGIN = f"https://{AISTUDIO_HOST}"
NEW_CHAT_URL = f"{ORIGIN}/prompts/new_chat"
SIGNIN_URL = f"https://{ACCOUNTS_HOST}/v3/signin/identifier"
RPC_PREFIX = "/$rpc/google.internal.alkali.applications.makersuite.v1.MakerSuiteService/"
JSPB_CONTENT_TYPE = "application/json+protobuf; charset=UTF-8"
CORS_ALLOW_HEADERS = ("content-type", "x-goog-api-key", "x-goog-authuser", "authorization", "x-user-agent")
DEFAULT_STATIC_DIR = Path(__file__).parent / "static"


@dataclass(frozen=True)
class SimConfig:
    """Process-level settings for one simulator instance."""

    state_dir: Path
    static_dir: Path = field(default=DEFAULT_STATIC_DIR)


STATE = web.AppKey("state", SimState)
CONFIG = web.AppKey("config", SimConfig)
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
#: ``#sim:hold=NAME`` gates, opened by ``POST /__sim__/release``.
HOLDS = web.AppKey("holds", dict[str, asyncio.Event])


def signin_redirect_url(continue_url: str = NEW_CHAT_URL) -> str:
    return f"{SIGNIN_URL}?continue={quote(continue_url, safe='')}"


def _state(request: web.Request) -> SimState:
    return request.config_dict[STATE]


def _session(request: web.Request) -> Session | None:
    return _state(request).accounts.lookup(dict(request.cookies))


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _redirect(location: str, status: int = 302) -> web.Response:
    """A redirect whose Location is sent exactly as given (HTTPFound would re-normalise it)."""
    return web.Response(status=status, headers={"Location": location})


def _jspb(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": JSPB_CONTENT_TYPE})


# ---------------------------------------------------------------------------------------------
# aistudio.google.com: page, static files, jserror

page_routes = web.RouteTableDef()

_MISSING_INDEX = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Google AI Studio</title>"
    "</head><body><p>AI Studio simulator: static/index.html is missing.</p></body></html>"
)


def _static_file(request: web.Request, name: str) -> Path | None:
    static_dir = request.config_dict[CONFIG].static_dir.resolve()
    path = (static_dir / name).resolve()
    if static_dir not in path.parents or not path.is_file():
        return None
    return path


def _file_response(path: Path) -> web.FileResponse:
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        ctype += "; charset=utf-8"
    return web.FileResponse(path, headers={"Content-Type": ctype})


@page_routes.get("/")
async def root(request: web.Request) -> web.StreamResponse:
    return _redirect("/prompts/new_chat")


async def _serve_page(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    session = _session(request)
    if session is None:
        state.log("page_redirect_login", path=request.path_qs)
        return _redirect(
            signin_redirect_url(
                f"{ORIGIN}{request.path_qs}" if request.path.startswith("/prompts/") else NEW_CHAT_URL
            )
        )
    state.log("page_load", path=request.path_qs, account=session.email)
    path = _static_file(request, "index.html")
    if path is None:
        return web.Response(text=_MISSING_INDEX, content_type="text/html")
    return _file_response(path)


@page_routes.get("/prompts/{tail:.*}")
async def prompts_page(request: web.Request) -> web.StreamResponse:
    return await _serve_page(request)


@page_routes.get(r"/u/{n:\d+}/prompts/{tail:.*}")
async def user_prompts_page(request: web.Request) -> web.StreamResponse:
    return await _serve_page(request)


@page_routes.get("/static/{name:.+}")
async def static_file(request: web.Request) -> web.StreamResponse:
    path = _static_file(request, request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    return _file_response(path)


@page_routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


@page_routes.route("*", "/_/MakerSuite/jserror")
async def jserror(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    state.jserrors.append(
        {"at": time.time(), "error": request.query.get("error", ""), "query": dict(request.query)}
    )
    return web.Response(status=204)


# ---------------------------------------------------------------------------------------------
# accounts.google.com: fake sign-in

accounts_routes = web.RouteTableDef()

_FALLBACK_LOGIN = """<!doctype html><html><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in</h1><p class="error">{error}</p>
<form method="post" action="/v3/signin/submit">
<input type="hidden" name="continue" value="{cont}">
<input type="email" name="email" aria-label="Email or phone" autocomplete="username">
<input type="password" name="password" aria-label="Enter your password">
<button type="submit">Next</button></form></body></html>"""


def _safe_continue(url: str | None) -> str:
    if not url:
        return NEW_CHAT_URL
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "google.com" or host.endswith(".google.com")):
        return url
    return NEW_CHAT_URL


async def _login_page(request: web.Request) -> web.StreamResponse:
    path = _static_file(request, "login.html")
    if path is not None:
        return _file_response(path)
    error = "Wrong email or password." if request.query.get("error") else ""
    cont = _safe_continue(request.query.get("continue"))
    return web.Response(
        text=_FALLBACK_LOGIN.format(error=error, cont=html.escape(cont)), content_type="text/html"
    )


@accounts_routes.get("/v3/signin/{tail:.*}")
async def signin_page(request: web.Request) -> web.StreamResponse:
    return await _login_page(request)


@accounts_routes.get("/ServiceLogin{tail:.*}")
async def service_login(request: web.Request) -> web.StreamResponse:
    return await _login_page(request)


@accounts_routes.post("/v3/signin/submit")
async def signin_submit(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    form = await request.post()
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    cont = _safe_continue(str(form.get("continue", "")) or request.query.get("continue"))
    if not state.accounts.check_password(email, password, accept_any_email=state.config["accept_any_email"]):
        state.log("login_failed", account=email.lower())
        return _redirect(
            f"/v3/signin/identifier?continue={quote(cont, safe='')}&error=invalid_credentials", 303
        )
    session = state.accounts.create_session(email)
    state.log("login", account=session.email)
    resp = _redirect(cont)
    _set_session_cookies(resp, session)
    return resp


def _set_session_cookies(resp: web.StreamResponse, session: Session) -> None:
    for name, value in session.cookies.items():
        resp.set_cookie(
            name,
            value,
            domain=".google.com",
            path="/",
            secure=True,
            httponly=name not in HTTP_ONLY_EXEMPT,
            samesite="None",
        )


@accounts_routes.get("/Logout")
async def logout(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    session = _session(request)
    if session is not None:
        state.accounts.expire(session)
        state.log("logout", account=session.email)
    resp = _redirect(signin_redirect_url())
    for name in session.cookies if session else ():
        resp.del_cookie(name, domain=".google.com", path="/")
    return resp


@accounts_routes.get("/{tail:.*}")
async def accounts_other(request: web.Request) -> web.StreamResponse:
    return _redirect(signin_redirect_url())


# ---------------------------------------------------------------------------------------------
# alkalimakersuite-pa.clients6.google.com: RPCs

rpc_routes = web.RouteTableDef()


@rpc_routes.route("OPTIONS", "/{path:.*}")
async def rpc_preflight(request: web.Request) -> web.StreamResponse:
    requested = [
        h.strip().lower()
        for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
        if h.strip()
    ]
    allowed = list(CORS_ALLOW_HEADERS) + [h for h in requested if h not in CORS_ALLOW_HEADERS]
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ", ".join(allowed),
            "Access-Control-Max-Age": "600",
        },
    )


@rpc_routes.post("/{path:.*}")
async def rpc(request: web.Request) -> web.StreamResponse:
    path = "/" + request.match_info["path"]
    if not path.startswith(RPC_PREFIX):
        raise web.HTTPNotFound()
    method = path[len(RPC_PREFIX) :]
    state = _state(request)
    session = _session(request)
    if method == "GenerateContent":
        return await generate_content(request, session)
    if session is None:
        await request.read()
        state.log("rpc_unauthenticated", method=method)
        return _jspb(wire.status_body(wire.CODE_UNAUTHENTICATED, wire.UNAUTHENTICATED_MESSAGE), 401)
    if method == "ListModels":
        state.log("list_models", account=session.email)
        return _jspb(wire.list_models_body(model.MODELS))
    if method == "CountTokens":
        body = await request.read()
        return _jspb(wire.count_tokens_body(model.count_tokens(_count_tokens_text(body))))
    if method in ("CreatePrompt", "UpdatePrompt", "ListPrompts", "ResolveDriveResource"):
        await request.read()
        state.log("rpc", method=method, account=session.email)
        return _jspb(b"[]")
    return _jspb(wire.status_body(12, f"Method {method} is not implemented by the simulator."), 501)


def _count_tokens_text(body: bytes) -> str:
    try:
        return wire.parse_generate_request(body).prompt
    except wire.RequestParseError:
        pass
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")
    texts: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str) and not v.startswith(("models/", "!")):
            texts.append(v)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(data)
    return "".join(texts)


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Cache-Control on everything; CORS headers on the RPC host."""
    response.headers["Cache-Control"] = "no-store"
    host = (request.host or "").partition(":")[0].lower()
    if host == RPC_HOST:
        response.headers["Access-Control-Allow-Origin"] = ORIGIN
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = "content-type, content-encoding"
        response.headers["Vary"] = "Origin"


# ---------------------------------------------------------------------------------------------
# GenerateContent


async def generate_content(request: web.Request, session: Session | None) -> web.StreamResponse:
    state = _state(request)
    body = await request.read()
    record: dict[str, Any] = {
        "id": state.next_request_id(),
        "received_at": time.time(),
        "account": session.email if session else None,
        "accept_encoding": request.headers.get("Accept-Encoding", ""),
        "status": None,
        "first_byte_at": None,
        "last_byte_at": None,
        "ended": None,
        "ended_at": None,
    }
    state.requests.append(record)
    mirror = state.mirrors.start(record["id"], record["account"])
    try:
        req = wire.parse_generate_request(body)
    except wire.RequestParseError as exc:
        record.update(status=400, ended="error", error=str(exc), raw_body=body.decode("utf-8", "replace"))
        return _mirrored(
            mirror,
            _jspb(
                wire.status_body(wire.CODE_INVALID_ARGUMENT, f"{wire.INVALID_ARGUMENT_MESSAGE} {exc}"), 400
            ),
        )
    directives = model.parse_directives(req.prompt)
    record.update(
        model=req.model_id,
        prompt=req.prompt,
        contents=req.contents,
        generation_config=req.generation_config.to_json(),
        tools=req.tools.to_json(),
        attachments=[a.to_json() for a in req.attachments],
        directives=directives.to_json(),
    )
    if session is None:
        record.update(status=401, ended="error")
        return _mirrored(
            mirror, _jspb(wire.status_body(wire.CODE_UNAUTHENTICATED, wire.UNAUTHENTICATED_MESSAGE), 401)
        )
    plan = model.plan_response(
        req,
        directives,
        request_id=record["id"],
        chunk_delay_ms=state.config["chunk_delay_ms"],
        call_offset=state.call_counter,
        account_error=state.account_error(session.email),
        grounding_index=state.config["grounding_index"],
    )
    state.call_counter += len(plan.calls)
    record["response"] = plan.summary()
    log.info(
        "%s %s account=%s end=%s http_error=%s directives=%s",
        record["id"],
        req.model_id,
        session.email,
        plan.end,
        plan.http_error and plan.http_error.status,
        {k: v for k, v in directives.to_json().items() if v not in (None, False, [])},
    )
    writer = _StreamWriter(request, record, mirror)
    if plan.ttfb_ms and not await writer.pause(plan.ttfb_ms):
        return writer.gone()
    if plan.http_error is not None:
        if plan.expire_session:
            state.accounts.expire(session)
            reason = "expired_accounts" if state.account_error(session.email) == "login" else "error=login"
            state.log("session_expired", account=session.email, reason=reason)
        err = plan.http_error
        record.update(status=err.status, ended="error", first_byte_at=time.time())
        record["last_byte_at"] = record["first_byte_at"]
        record["ended_at"] = record["first_byte_at"]
        return _mirrored(mirror, _jspb(wire.status_body(err.code, err.message), err.status))
    use_gzip = state.config["gzip"] and "gzip" in request.headers.get("Accept-Encoding", "").lower()
    return await writer.stream(plan, use_gzip)


def _mirrored(mirror: Mirror, response: web.Response) -> web.Response:
    """A whole (error) answer, mirrored for the stream helper."""
    mirror.begin(response.status, _mirror_headers(response.headers))
    mirror.write(response.body if isinstance(response.body, bytes) else b"")
    mirror.end("error")
    return response


def _mirror_headers(headers: Any) -> dict[str, str]:
    return {k: headers[k] for k in ("Content-Type", "Content-Encoding") if k in headers}


class _StreamWriter:
    """Paces a `Plan` onto the network, one event per write, records the timing and mirrors the
    bytes for the stream helper."""

    def __init__(self, request: web.Request, record: dict[str, Any], mirror: Mirror) -> None:
        self.request = request
        self.record = record
        self.mirror = mirror
        self.response: web.StreamResponse | None = None
        self._compressor: Any = None

    def closed(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def pause(self, ms: int) -> bool:
        """Sleep `ms`; False as soon as the client has gone or the server is stopping."""
        deadline = time.monotonic() + ms / 1000
        stopping = self.request.config_dict[SHUTTING_DOWN]
        while True:
            if self.closed() or stopping.is_set():
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, 0.05))

    def gone(self) -> web.StreamResponse:
        now = time.time()
        self.mirror.end("client_closed")
        self.record.update(ended="client_closed", ended_at=now)
        log.info("%s ended client_closed", self.record["id"])
        if self.record["status"] is None:
            self.record["status"] = 499
        return self.response or web.Response(status=499)

    def _encode(self, data: bytes, final: bool = False) -> bytes:
        if self._compressor is None:
            return data
        out: bytes = self._compressor.compress(data)
        tail: bytes = self._compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)
        return out + tail

    async def _write(self, data: bytes) -> bool:
        assert self.response is not None
        if self.closed():
            return False
        now = time.time()  # the moment the bytes are handed to the transport
        try:
            await self.response.write(data)
        except (ConnectionResetError, ConnectionError, RuntimeError):
            return False
        self.mirror.write(data)
        if self.record["first_byte_at"] is None:
            self.record["first_byte_at"] = now
        self.record["last_byte_at"] = now
        return True

    async def stream(self, plan: model.Plan, use_gzip: bool) -> web.StreamResponse:
        request, record = self.request, self.record
        headers = {"Content-Type": JSPB_CONTENT_TYPE}
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
            self._compressor = zlib.compressobj(wbits=31)
        record["content_encoding"] = "gzip" if use_gzip else "identity"
        self.response = web.StreamResponse(status=200, headers=headers)
        self.response.enable_chunked_encoding()
        try:
            await self.response.prepare(request)
        except (ConnectionResetError, ConnectionError):
            return self.gone()
        record["status"] = 200
        self.mirror.begin(200, headers)
        framer = wire.BodyFramer()
        pieces = [framer.piece(ev) for ev in plan.events]
        if plan.trailer is not None:
            pieces.append(framer.piece(plan.trailer))
        cut_index = min(2, len(pieces) - 1) if plan.end == "cut" else -1
        for i, piece in enumerate(pieces):
            if i > 0 and not await self.pause(plan.delay_ms):
                return self.gone()
            if i == cut_index:
                return await self._cut(piece)
            last = i == len(pieces) - 1
            if last and plan.end == "complete":
                ok = await self._write(self._encode(piece + framer.close(), final=True))
            else:
                ok = await self._write(self._encode(piece))
            if not ok:
                return self.gone()
            if plan.end == "stall":
                return await self._stall()
            if i == 0 and plan.hold and not await self._hold(plan.hold):
                return self.gone()
        if plan.end == "inline":
            if not await self.pause(plan.delay_ms):
                return self.gone()
            if not await self._write(self._encode(framer.close(plan.inline_error), final=True)):
                return self.gone()
            record.update(ended="error", inline_error=list(plan.inline_error or ()))
        else:
            record["ended"] = "complete"
        try:
            await self.response.write_eof()
        except (ConnectionResetError, ConnectionError, RuntimeError):
            return self.gone()
        self.mirror.end(record["ended"])
        record["ended_at"] = time.time()
        log.info("%s ended %s", record["id"], record["ended"])
        return self.response

    async def _cut(self, piece: bytes) -> web.StreamResponse:
        """Send half of an event, then drop the connection without the terminating chunk."""
        await self._write(self._encode(piece[: len(piece) // 2]))
        self.mirror.end("cut")
        self.record.update(ended="cut", ended_at=time.time())
        transport = self.request.transport
        if transport is not None:
            transport.close()
        assert self.response is not None
        return self.response

    async def _hold(self, name: str) -> bool:
        """Wait for ``POST /__sim__/release {"hold": name}``; False when the client left or the server stops."""
        gate = self.request.config_dict[HOLDS].setdefault(name, asyncio.Event())
        self.record["held"] = name
        stopping = self.request.config_dict[SHUTTING_DOWN]
        while not gate.is_set():
            if self.closed() or stopping.is_set():
                return False
            await asyncio.sleep(0.02)
        return True

    async def _stall(self) -> web.StreamResponse:
        stopping = self.request.config_dict[SHUTTING_DOWN]
        while not self.closed() and not stopping.is_set():
            await asyncio.sleep(0.05)
        return self.gone()


# ---------------------------------------------------------------------------------------------
# Inspection API (/__sim__/)

inspect_routes = web.RouteTableDef()


@inspect_routes.get("/__sim__/health")
async def sim_health(request: web.Request) -> web.StreamResponse:
    return _json({"ok": True})


@inspect_routes.get("/__sim__/requests")
async def sim_requests(request: web.Request) -> web.StreamResponse:
    return _json(_state(request).requests)


@inspect_routes.get("/__sim__/requests/last")
async def sim_requests_last(request: web.Request) -> web.StreamResponse:
    requests = _state(request).requests
    if not requests:
        return _json({"error": "no GenerateContent request received yet"}, 404)
    return _json(requests[-1])


@inspect_routes.post("/__sim__/release")
async def sim_release(request: web.Request) -> web.StreamResponse:
    """Open the gate a ``#sim:hold=NAME`` answer waits at (before or after it is reached)."""
    body = await request.json()
    name = body.get("hold") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        return web.json_response({"error": 'expected {"hold": "<name>"}'}, status=400)
    request.config_dict[HOLDS].setdefault(name, asyncio.Event()).set()
    return web.json_response({"released": name})


@inspect_routes.post("/__sim__/reset")
async def sim_reset(request: web.Request) -> web.StreamResponse:
    _state(request).reset()
    request.config_dict[HOLDS].clear()
    return _json({"ok": True})


@inspect_routes.get("/__sim__/config")
async def sim_config_get(request: web.Request) -> web.StreamResponse:
    return _json(_state(request).config)


@inspect_routes.post("/__sim__/config")
async def sim_config_post(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    try:
        update = validate_config_update(
            orjson.loads(await request.read() or b"{}"), state.accounts.known_emails()
        )
    except (ConfigError, orjson.JSONDecodeError) as exc:
        return _json({"error": str(exc)}, 400)
    state.update_config(update)
    return _json(state.config)


@inspect_routes.get("/__sim__/jserrors")
async def sim_jserrors(request: web.Request) -> web.StreamResponse:
    return _json(_state(request).jserrors)


@inspect_routes.get("/__sim__/events")
async def sim_events(request: web.Request) -> web.StreamResponse:
    return _json(_state(request).events)


@inspect_routes.post("/__sim__/sessions/expire")
async def sim_sessions_expire(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    count = state.accounts.expire_all()
    state.log("sessions_expired", count=count)
    return _json({"expired": count})


@inspect_routes.get("/__sim__/sessions")
async def sim_sessions(request: web.Request) -> web.StreamResponse:
    sessions = _state(request).accounts.sessions.values()
    return _json([{"email": s.email, "created_at": s.created_at} for s in sessions])


@inspect_routes.post("/__sim__/sessions")
async def sim_sessions_create(request: web.Request) -> web.StreamResponse:
    """Create a session for an email (default: the demo account); returns a storage_state."""
    state = _state(request)
    try:
        data = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        return _json({"error": "body must be JSON"}, 400)
    email = str(data.get("email") or state.accounts.demo_email)
    session = state.accounts.create_session(email)
    state.log("session_created", account=session.email)
    return _json(storage_state(session))


# ---------------------------------------------------------------------------------------------
# Factory


async def _on_shutdown(app: web.Application) -> None:
    app[SHUTTING_DOWN].set()
    app[STATE].mirrors.close()


MAX_REQUEST_BYTES = 64 * 1024 * 1024


def create_app(config: SimConfig) -> web.Application:
    """Build the simulator: one root app, one sub-app per simulated host."""
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Requests are read through the root app: prompts of several MB (a long context) must fit,
    # as they do on the real site; aiohttp's default would refuse anything over 1 MiB with 413.
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[CONFIG] = config
    app[STATE] = SimState(accounts=AccountStore(config.state_dir))
    app[SHUTTING_DOWN] = asyncio.Event()
    app[HOLDS] = {}
    app.on_response_prepare.append(on_prepare)
    app.on_shutdown.append(_on_shutdown)

    studio = web.Application()
    studio.add_routes(inspect_routes)
    studio.add_routes(page_routes)
    app.add_domain(AISTUDIO_HOST, studio)

    rpc_app = web.Application()
    rpc_app.add_routes(rpc_routes)
    app.add_domain(RPC_HOST, rpc_app)

    accounts = web.Application()
    accounts.add_routes(accounts_routes)
    app.add_domain(ACCOUNTS_HOST, accounts)

    for host in LOCAL_HOSTS:
        local = web.Application()
        local.add_routes(inspect_routes)
        app.add_domain(host, local)
    return app
