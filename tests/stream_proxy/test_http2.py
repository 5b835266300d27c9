"""The real proxy against an HTTP/2 upstream, as the real AI Studio RPC host is.

``python -m stream_proxy`` runs as a subprocess with ``AISTUDIO_RESOLVE`` pointing the RPC host at
``H2Upstream`` (h2 only, gzip bodies sent as DATA frames the test releases one by one). The
clients speak h2 too: Chromium (trusting the proxy's CA by SPKI, as the worker does) and httpx.
mitmproxy negotiates h2 on both legs by itself: with its defaults (``http2=True``,
``connection_strategy=eager``) it connects upstream while the client's TLS handshake is paused,
offers the client's ALPN list upstream, and gives the client what the upstream chose.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from aistudio_sim import wire
from shared import channel, protocol
from tests.requirements import needs
from tests.stream_proxy.conftest import StreamFixture, load_stream
from tests.stream_proxy.h2_upstream import H2Upstream, Reply
from tests.stream_proxy.test_proxy_process import (
    CHROMIUM,
    GENERATE,
    REQUEST_BODY,
    RPC_HOST,
    ProxyProcess,
    check_decoded,
    chromium_on_rpc_page,
    events_until_done,
    launch,
    next_event,
    subscribe,
)

URL = f"https://{RPC_HOST}{GENERATE}"
TEXT = "generate_content_text.stream"
TEXT_CONTENT = (
    'Hello! The capital of France is **Paris**.\nFun fact: the café "Le Procope" opened in 1686 '
    "— it still serves coffee ☕."
)
needs_chromium = needs(CHROMIUM.exists(), "Debian Chromium")


@pytest.fixture
async def upstream(upstream_cert) -> AsyncIterator[H2Upstream]:
    async with H2Upstream(upstream_cert.cert, upstream_cert.key) as up:
        yield up


@pytest.fixture
async def proxy(short_socket_dir: Path, free_port: int, upstream: H2Upstream) -> AsyncIterator[ProxyProcess]:
    """The proxy process mapping the RPC host to the h2 upstream; it must exit 0 without a traceback."""
    pp = await launch(short_socket_dir, free_port, AISTUDIO_RESOLVE=f"{RPC_HOST}=127.0.0.1:{upstream.port}")
    try:
        assert pp.socket.exists(), pp.output
        yield pp
        assert await pp.terminate() == 0, pp.output
        assert "Traceback" not in pp.output, pp.output
    finally:
        if pp.proc.returncode is None:
            pp.proc.kill()
            await pp.proc.wait()
        pp.pump.cancel()


@pytest.fixture
async def sub(proxy: ProxyProcess) -> AsyncIterator[channel.Connection]:
    conn = await subscribe(proxy.socket)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def text_stream(fixtures_dir: Path) -> StreamFixture:
    return load_stream(fixtures_dir, TEXT)


# --------------------------------------------------------------------------- clients


def h2_client(proxy: ProxyProcess) -> httpx.AsyncClient:
    """An httpx client offering h2, through the proxy, trusting only the proxy's CA."""
    ctx = ssl.create_default_context(cafile=str(proxy.certs / "mitmproxy-ca-cert.pem"))
    return httpx.AsyncClient(http2=True, proxy=proxy.url, verify=ctx, timeout=20)


async def post_h2(client: httpx.AsyncClient) -> tuple[httpx.Response, bytes]:
    """POST GenerateContent; the response and its raw (still gzip) body."""
    async with client.stream(
        "POST", URL, content=REQUEST_BODY, headers={"Content-Type": "application/json+protobuf"}
    ) as resp:
        body = b"".join([chunk async for chunk in resp.aiter_raw()])
    return resp, body


FETCH_JS = """async ([path, body]) => {
    const bytes = [];
    let status = null, error = null;
    try {
        const resp = await fetch(path, {method: "POST", body,
            headers: {"Content-Type": "application/json+protobuf"}});
        status = resp.status;
        window.__fetchStatus = status;
        const reader = resp.body.getReader();
        for (;;) {
            const {done, value} = await reader.read();
            if (done) break;
            bytes.push(...value);
        }
    } catch (e) {
        error = String(e);
    }
    const entry = performance.getEntriesByName(new URL(path, location.href).href).pop();
    return {status, bytes, error,
            fetchProtocol: entry ? entry.nextHopProtocol : null,
            pageProtocol: performance.getEntriesByType("navigation")[0].nextHopProtocol};
}"""


class Browser:
    """Chromium through the proxy on a page of the RPC host; ``fetch()`` starts the page's POST."""

    def __init__(self, page) -> None:
        self.page = page

    def fetch(self) -> asyncio.Task[dict]:
        return asyncio.create_task(self.page.evaluate(FETCH_JS, [GENERATE, REQUEST_BODY.decode()]))

    async def headers_seen(self) -> None:
        """The page's fetch has its response headers (before that, a cut fails the fetch itself)."""
        await self.page.wait_for_function("() => window.__fetchStatus != null")


@pytest.fixture
async def chromium(proxy: ProxyProcess) -> AsyncIterator[Browser]:
    async with chromium_on_rpc_page(proxy) as page:
        yield Browser(page)


# --------------------------------------------------------------------------- helpers


async def until_pong(sub: channel.Connection) -> list[protocol.Message]:
    """Everything published before a ping sent now: once the client has seen the end of its
    response, mitmproxy has run the flow's last hook, so nothing of that flow may follow."""
    await sub.send(protocol.Ping(nonce="after"))
    out = []
    while not isinstance(msg := await next_event(sub), protocol.Pong):
        out.append(msg)
    return out


def gzip_body(data: bytes) -> list[bytes]:
    return [gzip.compress(data)]


def assert_h2_upstream(upstream: H2Upstream, requests: int = 1) -> None:
    """Every connection that reached the upstream negotiated h2 with SNI = the real host, and it
    got the GenerateContent request(s) with the real authority, path and body."""
    assert upstream.connections, "no connection reached the upstream"
    assert {(c.alpn, c.sni) for c in upstream.connections} == {("h2", RPC_HOST)}
    posts = [r for r in upstream.requests if r.method == "POST"]
    assert len(posts) == requests
    for r in posts:
        assert (r.authority, r.path, r.body) == (RPC_HOST, GENERATE, REQUEST_BODY)


# --------------------------------------------------------------------------- streaming


@needs_chromium
async def test_chromium_over_h2_streams_the_answer_and_gets_it_whole(
    proxy, sub, upstream, chromium, thinking_stream
):
    """h2 on both legs: the first event arrives while upstream holds its last DATA frame, the
    events end with exactly one ``done``, and the page reads the body byte for byte."""
    pieces = thinking_stream.gzip_pieces()
    reply = upstream.answer(Reply(pieces, hold=[-1]))
    fetch = chromium.fetch()

    started = await next_event(sub)
    assert isinstance(started, protocol.StreamStarted)
    assert (started.url, started.model) == (URL, "gemini-2.5-pro")
    first = await next_event(sub)
    assert first.type == "reasoning" and first.id == started.id
    assert not reply.sent[-1].is_set(), "the first event must arrive before the last frame is sent"

    reply.release(-1)
    events = [first, *await events_until_done(sub)]
    result = await fetch
    assert result["error"] is None
    assert result["status"] == 200
    assert bytes(result["bytes"]) == thinking_stream.body  # the browser undid the gzip
    assert (result["pageProtocol"], result["fetchProtocol"]) == ("h2", "h2")
    check_decoded(events, started.id)
    assert await until_pong(sub) == []
    assert_h2_upstream(upstream)


async def test_h2_client_gets_the_gzip_body_byte_identical_while_events_stream(
    proxy, sub, upstream, thinking_stream
):
    """Through an h2 client the raw (still gzip) body is exactly what the upstream's DATA frames
    carried, and the events stream ahead of the last frame."""
    pieces = thinking_stream.gzip_pieces()
    reply = upstream.answer(Reply(pieces, hold=[-1]))
    async with h2_client(proxy) as client:
        request = asyncio.create_task(post_h2(client))
        started = await next_event(sub)
        first = await next_event(sub)
        assert first.type == "reasoning"
        assert not reply.sent[-1].is_set()
        reply.release(-1)
        events = [first, *await events_until_done(sub)]
        resp, body = await request
    assert resp.http_version == "HTTP/2"
    assert resp.status_code == 200
    assert resp.headers["content-encoding"] == "gzip"
    assert body == b"".join(pieces)
    check_decoded(events, started.id)
    assert await until_pong(sub) == []
    assert_h2_upstream(upstream)


async def collect_until_done(
    sub: channel.Connection, flows: dict[str, list[protocol.Message]], flow_id: str | None = None
) -> str:
    """Sort messages into ``flows`` by flow id until ``flow_id`` (or the next flow started) is done."""
    while True:
        msg = await next_event(sub)
        if isinstance(msg, protocol.StreamStarted):
            flows[msg.id] = []
            flow_id = flow_id or msg.id
            continue
        flows[msg.id].append(msg)
        if msg.id == flow_id and msg.type == "done":
            return flow_id


async def test_two_streams_multiplexed_on_one_h2_connection_keep_their_own_events(
    proxy, sub, upstream, thinking_stream, text_stream
):
    """Two GenerateContent streams interleaved on one h2 connection (each leg) are two flows:
    each gets its own events and its own single ``done``, whatever the interleaving."""
    held = upstream.answer(Reply(text_stream.gzip_pieces(), hold=[-1]))
    upstream.answer(Reply(thinking_stream.gzip_pieces()))
    flows: dict[str, list[protocol.Message]] = {}
    async with h2_client(proxy) as client:
        first_request = asyncio.create_task(post_h2(client))
        first = await next_event(sub)
        assert isinstance(first, protocol.StreamStarted)
        flows[first.id] = [await next_event(sub)]
        assert flows[first.id][0].type == "content"

        second_request = asyncio.create_task(post_h2(client))
        second_id = await collect_until_done(sub, flows)  # the first flow's events may interleave
        await second_request
        assert second_id != first.id
        assert not held.sent[-1].is_set()
        assert "done" not in [e.type for e in flows[first.id]]

        held.release(-1)
        await collect_until_done(sub, flows, first.id)
        _, first_body = await first_request
    check_decoded(flows[second_id], second_id)
    first_events = flows[first.id]
    assert [e.type for e in first_events] == ["content"] * 3 + ["finish", "usage", "done"]
    assert "".join(e.text for e in first_events if e.type == "content") == TEXT_CONTENT
    assert first_body == b"".join(held.frames)
    assert await until_pong(sub) == []
    assert len(upstream.connections) == 1, (
        "mitmproxy should multiplex both streams on one upstream connection"
    )
    assert sorted(r.stream_id for r in upstream.requests if r.method == "POST") == [1, 3]
    assert_h2_upstream(upstream, requests=2)


# --------------------------------------------------------------------------- failures


async def wait_until_cut(
    reply: Reply, sub: channel.Connection, ready: Callable[[], Awaitable[None]] | None = None
) -> tuple[protocol.StreamStarted, list[protocol.Message]]:
    """Take ``stream_started`` and the first event, wait for ``ready`` (the client's side), release
    the reply's ending, return the rest."""
    started = await next_event(sub)
    assert isinstance(started, protocol.StreamStarted)
    first = await next_event(sub)
    assert first.type == "reasoning"
    if ready is not None:
        await ready()
    reply.release_ending()
    return started, [first, *await events_until_done(sub)]


def assert_aborted(events: list[protocol.Message], flow_id: str, why: str) -> None:
    """The flow ends with ``error(aborted)`` naming ``why`` and one ``done``; no finish, no shutdown."""
    assert {e.id for e in events} == {flow_id}
    types = [e.type for e in events]
    assert types[-2:] == ["error", "done"] and types.count("done") == 1, types
    assert "finish" not in types and "usage" not in types
    error = events[-2]
    assert error.kind == "aborted", error.kind  # not proxy_shutdown: the proxy is up
    assert why in error.message, error.message
    assert "shut down" not in error.message
    assert "by client" not in error.message, "mitmproxy's h2 wording blames the browser for any reset"


@pytest.mark.parametrize(
    ("ending", "why"),
    [("reset", "the HTTP/2 stream was reset (INTERNAL_ERROR)"), ("drop", "peer closed connection")],
    ids=["rst_stream", "connection_drop"],
)
async def test_upstream_cut_mid_body_over_h2_ends_with_aborted_and_done(
    proxy, sub, upstream, thinking_stream, ending, why
):
    """An RST_STREAM or a dropped connection after some DATA frames ends the flow with
    ``error(aborted)`` + ``done`` (not the proxy-shutdown error), and the h2 client sees it fail."""
    reply = upstream.answer(Reply(thinking_stream.gzip_pieces()[:-2], ending=ending, hold_ending=True))
    async with h2_client(proxy) as client:
        request = asyncio.create_task(post_h2(client))
        started, events = await wait_until_cut(reply, sub)
        with pytest.raises(httpx.HTTPError):
            await request
    assert_aborted(events, started.id, why)
    assert await until_pong(sub) == []
    assert_h2_upstream(upstream)


@needs_chromium
async def test_rst_stream_mid_body_fails_the_pages_fetch_and_ends_with_aborted_and_done(
    proxy, sub, upstream, chromium, thinking_stream
):
    """Through Chromium the upstream's RST_STREAM reaches the page as a failed read, and the
    subscriber gets ``error(aborted)`` + ``done``."""
    reply = upstream.answer(Reply(thinking_stream.gzip_pieces()[:-2], ending="reset", hold_ending=True))
    fetch = chromium.fetch()
    started, events = await wait_until_cut(reply, sub, ready=chromium.headers_seen)
    result = await fetch
    assert result["status"] == 200
    assert result["error"] and "TypeError" in result["error"], result
    assert_aborted(events, started.id, "the HTTP/2 stream was reset (INTERNAL_ERROR)")
    assert await until_pong(sub) == []
    assert_h2_upstream(upstream)


async def test_graceful_goaway_mid_body_cuts_the_answer_and_is_reported_as_aborted(
    proxy, sub, upstream, thinking_stream
):
    """A GOAWAY(NO_ERROR) naming the open stream as the last one should let it finish (RFC 9113
    §6.8), but hyper-h2 closes its connection state on any GOAWAY (python-hyper/h2#1181) and
    mitmproxy then closes the connection: the answer is cut. What the proxy owes the worker is
    that the flow still ends at once with ``error(aborted)`` + ``done``, not a hang."""
    pieces = thinking_stream.gzip_pieces()
    reply = upstream.answer(Reply(pieces, goaway_before=-3, hold=[-3]))
    async with h2_client(proxy) as client:
        request = asyncio.create_task(post_h2(client))
        started = await next_event(sub)
        first = await next_event(sub)
        assert first.type == "reasoning"
        reply.release(-3)
        events = [first, *await events_until_done(sub)]
        with pytest.raises(httpx.HTTPError):
            await request
    assert_aborted(events, started.id, "HTTP/2")
    assert await until_pong(sub) == []
    assert_h2_upstream(upstream)


@pytest.mark.parametrize(
    ("message", "kind"),
    [(wire.QUOTA_MESSAGE, "quota"), (wire.RATE_LIMIT_MESSAGE, "rate_limit")],
    ids=["quota", "rate_limit"],
)
async def test_h2_429_with_a_jspb_status_body_is_the_quota_or_rate_limit_error(
    proxy, sub, upstream, message, kind
):
    """A 429 over h2 with a gzip JSPB ``google.rpc.Status`` body becomes ``error(quota|rate_limit,
    429, <message>)`` + ``done``; the client gets the 429 and its body unchanged."""
    body = wire.status_body(wire.CODE_RESOURCE_EXHAUSTED, message)
    upstream.answer(Reply(gzip_body(body), status=429))
    async with h2_client(proxy) as client:
        resp, raw = await post_h2(client)
    assert (resp.http_version, resp.status_code) == ("HTTP/2", 429)
    assert gzip.decompress(raw) == body
    started = await next_event(sub)
    events = await events_until_done(sub)
    assert [e.type for e in events] == ["error", "done"]
    error = events[0]
    assert (error.id, error.kind, error.status, error.message) == (started.id, kind, 429, message)
    assert await until_pong(sub) == []
    assert_h2_upstream(upstream)
