"""``StreamTap``: the mitmproxy addon that taps AI Studio's streamed answers (docs/aistudio.md §4.1, §4.2, §4.6, §4.10).

Scope: only the AI Studio hosts are decrypted (``allow_hosts`` from ``allow_hosts_patterns()``,
set by ``server.py``); every other host is tunnelled untouched (with Camoufox, which cannot pin the
CA, every host is decrypted and mitmproxy checks the real certificates). Within them:

* a POST whose path before ``?`` ends with ``MakerSuiteService/GenerateContent`` is sniffed:
  ``stream_started`` when the request goes upstream, then every event the pure decoder yields
  while the response streams, and exactly one ``done`` per flow (from the decoder, the ``response``
  or ``error`` hook, or shutdown);
* on shutdown (``abort_all``) every stream still open, and any cut after it, ends with
  ``error(proxy_shutdown)`` + ``done``: the browser's connection is cut by the proxy itself, so
  mitmproxy's reason for it ("Client disconnected.", "peer closed connection") would mislead;
* a jserror GET whose URL-decoded query mentions a quota failure gives ``quota_signal``;
* both name the **slot** that sent the request: the proxy asks every client for credentials
  (``proxyauth``, any accepted) and the browser worker gives each page's context its slot id as
  the user name, so answers streaming on several pages at once each reach their own job;
* every other flow streams through unbuffered.

Hooks are thin adapters: the chunk function feeds the flow's ``ResponseDecoder`` and returns the
bytes unchanged, so the browser gets each byte as it arrives; events go to the ``Publisher``
with ``send_nowait`` and never block mitmproxy's loop.

TEST/DEMO ONLY: the ``aisp_resolve`` option (``host=ip:port,...``) sends mapped hosts to a local
stand-in. ``server_connect`` swaps the address while SNI and Host keep the real name, and the
upstream certificate of a mapped connection is not verified (``tls_start_server``).

Run standalone: ``mitmdump -s stream_proxy/addon.py --set aisp_socket=run/proxy.sock
--set allow_hosts='<patterns>'``; ``python -m stream_proxy`` wires the same addon up itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http, tls
from mitmproxy.proxy import server_hooks
from OpenSSL import SSL

from shared import channel, protocol
from shared.errors import StreamProxyShutdown
from shared.settings import VERSION, parse_resolve
from shared.wire import decoder, endpoints
from stream_proxy.publisher import Publisher

log = logging.getLogger(__name__)

QUOTA_MARKERS = ("exceeded quota", "resource_exhausted", "failed to generate content")
_MODEL_RE = re.compile(rb'^\s*\[\s*"models/([^"\\]{1,200})"')
_MESSAGE_LIMIT = 500
_SLOT_LIMIT = 64
#: mitmproxy's HTTP/2 layer words an RST_STREAM from either peer, AI Studio included, this way.
_H2_RESET_RE = re.compile(r"^stream reset by client \((\w+)\)$")
#: What a stream cut by this proxy's shutdown reports (it reaches the client as the error message).
SHUTDOWN_MESSAGE = (
    "the stream proxy shut down (a restart or a stop) while the answer was streaming; the browser's "
    "connection to AI Studio runs through it, so the answer was cut off: retry the request"
)


def allow_hosts_patterns(hosts: tuple[str, ...] = endpoints.HOSTS) -> list[str]:
    """mitmproxy ``allow_hosts`` regexes for ``hosts`` (matched against ``host:port``, any port)."""
    names = "|".join(re.escape(h) for h in hosts)
    return [rf"^(?:{names}):\d+$"]


def is_jserror(path: str) -> bool:
    return "/jserror" in path.split("?", 1)[0]


def quota_message(path: str) -> str | None:
    """The reported error text if a jserror URL mentions a quota failure, else None."""
    _, _, query = path.partition("?")
    decoded = urllib.parse.unquote_plus(query)
    lowered = decoded.lower()
    if not any(marker in lowered for marker in QUOTA_MARKERS):
        return None
    errors = urllib.parse.parse_qs(query).get("error")
    return (errors[0] if errors else decoded)[:_MESSAGE_LIMIT]


def failure_reason(message: str) -> str:
    """mitmproxy's reason for a broken flow, minus a side it cannot know.

    Its HTTP/2 layer reports an RST_STREAM as "stream reset by client (<code>)" whichever peer
    sent it, so an answer that AI Studio cut off would blame the browser.
    """
    match = _H2_RESET_RE.match(message)
    return f"the HTTP/2 stream was reset ({match.group(1)})" if match else message


def slot_of(flow: http.HTTPFlow) -> str | None:
    """The slot that sent ``flow``: the user name its client gave the proxy (mitmproxy's ``proxyauth``)."""
    auth = flow.metadata.get("proxyauth")
    if isinstance(auth, tuple) and auth and isinstance(auth[0], str) and auth[0]:
        return auth[0][:_SLOT_LIMIT]
    return None


def model_from_body(body: bytes | None) -> str | None:
    """The model id from a GenerateContent request body (``["models/<id>", ...]``), if cheaply found."""
    if not body:
        return None
    match = _MODEL_RE.match(body[:256])
    return match.group(1).decode("utf-8", "replace") if match else None


class _Tap:
    """The state of one sniffed flow.

    (A plain class: mitmdump loads this file as a script outside ``sys.modules``, where
    ``@dataclass`` cannot resolve its annotations.)
    """

    __slots__ = ("flow_id", "started", "decoder", "done", "timings")

    def __init__(self, flow_id: str, started: float) -> None:
        self.flow_id = flow_id
        self.started = started
        self.decoder: decoder.ResponseDecoder | None = None
        self.done = False
        self.timings: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self.timings.setdefault(name, round(time.time() - self.started, 6))


class StreamTap:
    """Sniffs GenerateContent and jserror flows and publishes what they say; see the module docstring."""

    hosts = endpoints.HOSTS

    def __init__(self, publisher: Publisher | None = None) -> None:
        self.publisher = publisher if publisher is not None else Publisher()
        #: set once mitmproxy is up (the ``running`` hook)
        self.started = asyncio.Event()
        #: set while no sniffed stream is open
        self.idle = asyncio.Event()
        self.idle.set()
        self._taps: dict[str, _Tap] = {}
        self._resolve: dict[str, tuple[str, int]] = {}
        #: ids of server connections whose address was swapped by the resolve override
        self._remapped: set[str] = set()
        self._server: Any = None
        self._socket_path: Path | None = None
        #: Set by ``abort_all``: from then on a stream that breaks off was cut by the shutdown.
        self.shutting_down = False

    # -- lifecycle ---------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "aisp_resolve",
            str,
            "",
            "TEST/DEMO ONLY: host=ip:port,... connect these hosts to local addresses instead "
            "(SNI and Host keep the real name; their upstream certificates are not verified).",
        )
        loader.add_option(
            "aisp_socket",
            str,
            "",
            "Serve the decoded stream events on this Unix socket. Only for running the addon "
            "under mitmdump; python -m stream_proxy serves the socket itself.",
        )

    def configure(self, updated: set[str]) -> None:
        if "aisp_resolve" in updated:
            try:
                self._resolve = parse_resolve(ctx.options.aisp_resolve)
            except ValueError as exc:
                raise exceptions.OptionsError(f"aisp_resolve: {exc}") from None
            for host, (ip, port) in self._resolve.items():
                log.warning(
                    "TEST/DEMO resolve override: %s -> %s:%d (certificate not verified)", host, ip, port
                )

    async def running(self) -> None:
        if ctx.options.aisp_socket and self._server is None:
            self._socket_path = Path(ctx.options.aisp_socket)
            self._server = await channel.serve(
                self._socket_path, self.publisher.handle, process="stream_proxy", version=VERSION
            )
            log.info("serving stream events on %s", self._socket_path)
        self.started.set()

    async def done(self) -> None:
        self.abort_all()
        if self._server is not None:
            self._server.close()  # drops the subscribers and removes the socket file
            await self.publisher.close()
            await self._server.wait_closed()
            self._server = None

    def abort_all(self) -> None:
        """Shutting down: end every open stream with ``error(proxy_shutdown)`` + ``done``, and any
        stream that breaks off from now on too (its connection is about to be cut by this proxy)."""
        self.shutting_down = True
        for tap in list(self._taps.values()):
            self._emit(tap, _shutdown_events(tap.flow_id))
        self._taps.clear()
        self.idle.set()

    @property
    def open_streams(self) -> int:
        return len(self._taps)

    def _pop(self, flow: http.HTTPFlow) -> _Tap | None:
        tap = self._taps.pop(flow.id, None)
        if not self._taps:
            self.idle.set()
        return tap

    # -- connections: the test/demo resolve override -----------------------------------------

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if not self._resolve or server.address is None or server.via is not None:
            return
        host, port = server.address[:2]
        target = self._resolve.get(str(host).lower())
        if target is None:
            return
        if server.sni is None and not _is_ip(str(host)):
            server.sni = str(host)
        server.address = target
        self._remapped.add(server.id)
        log.debug("resolve override: %s:%s -> %s:%d", host, port, *target)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._remapped.discard(data.server.id)

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._remapped.discard(data.server.id)

    def tls_start_server(self, data: tls.TlsData) -> None:
        # Runs after mitmproxy's TlsConfig built the connection; a mapped host is a local
        # stand-in with a self-signed certificate, so its certificate is not checked.
        if data.conn.id in self._remapped and data.ssl_conn is not None:
            data.ssl_conn.set_verify(SSL.VERIFY_NONE)

    # -- flows --------------------------------------------------------------------------------

    def _sniffed(self, flow: http.HTTPFlow) -> bool:
        # Only the POST carries an answer: the browser's CORS preflight (OPTIONS) of the same
        # cross-origin RPC has an empty body and must not be mistaken for a (broken) response.
        return (
            flow.request.method == "POST"
            and flow.request.pretty_host.lower() in endpoints.HOSTS
            and endpoints.is_generate_content(flow.request.path)
        )

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return  # already answered (proxyauth's 407 to a client that has not named its slot yet)
        if not self._sniffed(flow):
            flow.request.stream = True  # nothing to read here: pass it on as it comes

    def request(self, flow: http.HTTPFlow) -> None:
        path = flow.request.path
        if is_jserror(path) and flow.request.pretty_host.lower() in endpoints.HOSTS:
            message = quota_message(path)
            if message is not None:
                log.warning("jserror reports a quota failure: %s", message)
                self.publisher.publish(
                    protocol.QuotaSignal(ts=time.time(), message=message, slot=slot_of(flow))
                )
            return
        if not self._sniffed(flow):
            return
        tap = _Tap(flow.id, time.time())
        self._taps[flow.id] = tap
        self.idle.clear()
        model = model_from_body(flow.request.raw_content)
        slot = slot_of(flow)
        log.info("GenerateContent %s started (model %s, slot %s)", flow.id, model, slot)
        self.publisher.publish(
            protocol.StreamStarted(
                id=flow.id, ts=tap.started, url=flow.request.pretty_url, model=model, slot=slot
            )
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        assert flow.response is not None
        tap = self._taps.get(flow.id)
        if tap is None:
            flow.response.stream = True
            return
        tap.mark("response_headers_s")
        tap.decoder = decoder.ResponseDecoder(
            flow.response.status_code, flow.response.headers.get("content-encoding"), stream_id=flow.id
        )

        def on_chunk(chunk: bytes) -> bytes:
            # b"" is not the end (HTTP/2 sends it twice): the response/error hooks are.
            if chunk and not tap.done and tap.decoder is not None:
                try:
                    self._emit(tap, tap.decoder.feed(chunk))
                except Exception:
                    log.exception("decoding %s failed; passing the bytes on regardless", tap.flow_id)
            return chunk

        flow.response.stream = on_chunk

    def response(self, flow: http.HTTPFlow) -> None:
        tap = self._pop(flow)
        if tap is None or tap.done:
            return
        if tap.decoder is None:  # a response made without streaming (e.g. by another addon)
            assert flow.response is not None
            tap.decoder = decoder.ResponseDecoder(
                flow.response.status_code, flow.response.headers.get("content-encoding"), stream_id=flow.id
            )
            self._emit(tap, tap.decoder.feed(flow.response.raw_content or b""))
        self._emit(tap, tap.decoder.close())

    def error(self, flow: http.HTTPFlow) -> None:
        tap = self._pop(flow)
        if tap is None or tap.done:
            return
        reason = failure_reason(flow.error.msg) if flow.error else "connection error"
        if self.shutting_down:
            log.warning("GenerateContent %s cut by the shutdown (%s)", flow.id, reason)
            self._emit(tap, _shutdown_events(tap.flow_id))
            return
        if tap.decoder is None:
            events = _failure(tap.flow_id, "aborted", f"GenerateContent failed before a response: {reason}")
        else:
            events = [
                ev.model_copy(update={"message": f"{ev.message}: {reason}"})
                if isinstance(ev, protocol.Error) and ev.kind == "aborted"
                else ev
                for ev in tap.decoder.close()
            ]
        log.warning("GenerateContent %s broke off: %s", flow.id, reason)
        self._emit(tap, events)

    # -- publishing ---------------------------------------------------------------------------

    def _emit(self, tap: _Tap, events: list[decoder.Event]) -> None:
        for event in events:
            if tap.done:
                return
            if isinstance(event, protocol.Done):
                tap.done = True
                tap.mark("total_s")
                event = event.model_copy(update={"timings": dict(tap.timings)})
                log.info("GenerateContent %s done %s", tap.flow_id, tap.timings)
            else:
                tap.mark("first_event_s")
            self.publisher.publish(event)


def _failure(flow_id: str, kind: str, message: str) -> list[decoder.Event]:
    """``error`` + ``done`` for a flow that ends without the decoder's say."""
    now = time.time()
    return [protocol.Error(id=flow_id, ts=now, kind=kind, message=message), protocol.Done(id=flow_id, ts=now)]


def _shutdown_events(flow_id: str) -> list[decoder.Event]:
    return _failure(flow_id, StreamProxyShutdown.kind, SHUTDOWN_MESSAGE)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


addons = [StreamTap()]
