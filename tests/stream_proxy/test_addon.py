"""StreamTap with fabricated mitmproxy flows, and the Publisher on a real Unix socket."""

from __future__ import annotations

import asyncio
import gzip
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from mitmproxy import connection, exceptions
from mitmproxy import flow as mflow
from mitmproxy.http import Headers, HTTPFlow
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import taddons, tflow, tutils
from OpenSSL import SSL

from shared import channel, protocol
from shared.errors import StreamProxyShutdown
from shared.wire.decoder import ResponseDecoder
from stream_proxy import addon as addon_module
from stream_proxy.addon import StreamTap, allow_hosts_patterns, model_from_body, quota_message
from stream_proxy.publisher import Publisher
from tests.shared.wire.test_grounding import FRANCE_SOURCE, PARIS_SOURCE, answer_body

RPC_HOST = "alkalimakersuite-pa.clients6.google.com"
GENERATE = "/$rpc/google.internal.alkali.applications.makersuite.v1.MakerSuiteService/GenerateContent"
REQUEST_BODY = b'["models/gemini-2.5-pro",[[[[null,"17*23?"]],"user"]],null,[null,null,null,65536,1]]'


class RecordingPublisher(Publisher):
    """Keeps every published message instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[protocol.Message] = []

    def publish(self, msg: protocol.Message) -> int:
        self.messages.append(msg)
        return 1

    def types(self) -> list[str]:
        return [m.type for m in self.messages]


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def tap(publisher: RecordingPublisher):
    addon = StreamTap(publisher)
    with taddons.context(addon) as tctx:
        addon.tctx = tctx  # type: ignore[attr-defined]
        yield addon


def make_flow(
    host: str = RPC_HOST, path: str = GENERATE, method: bytes = b"POST", body: bytes = REQUEST_BODY
):
    headers = Headers(host=host, content_type="application/json+protobuf")
    req = tutils.treq(
        host=host, port=443, scheme=b"https", method=method, path=path.encode(), headers=headers, content=body
    )
    return tflow.tflow(req=req)


def send_request(tap: StreamTap, flow: HTTPFlow) -> None:
    tap.requestheaders(flow)
    tap.request(flow)


def start_response(tap: StreamTap, flow: HTTPFlow, status: int = 200, encoding: str | None = "gzip"):
    """Run ``responseheaders`` and return the chunk function it installed (or the ``stream`` value)."""
    headers = Headers(content_type="application/json+protobuf; charset=UTF-8")
    if encoding:
        headers["content-encoding"] = encoding
    flow.response = tutils.tresp(status_code=status, headers=headers, content=None)
    tap.responseheaders(flow)
    return flow.response.stream


def expected_events(body_pieces: list[bytes], encoding: str | None = "gzip") -> list[dict]:
    dec = ResponseDecoder(200, encoding)
    events = [e for piece in body_pieces for e in dec.feed(piece)] + dec.close()
    return [e.model_dump(exclude={"id", "ts", "timings"}) for e in events]


def published_events(publisher: RecordingPublisher) -> list[dict]:
    """Published stream events (after ``stream_started``) without id/ts/timings."""
    out = []
    for msg in publisher.messages:
        if msg.type in ("stream_started", "quota_signal"):
            continue
        fields = msg.model_dump(exclude={"id", "ts", "timings"})
        out.append(fields)
    return out


# --------------------------------------------------------------------------- scope


def test_allow_hosts_patterns_match_only_the_aistudio_hosts():
    """The allow_hosts regexes take both AI Studio hosts on any port and nothing else."""
    import re

    (pattern,) = allow_hosts_patterns()
    for ok in ("aistudio.google.com:443", f"{RPC_HOST}:443", "aistudio.google.com:40123"):
        assert re.search(pattern, ok, re.IGNORECASE)
    for other in (
        "accounts.google.com:443",
        "play.google.com:443",
        "waa-pa.clients6.google.com:443",
        "evil-aistudio.google.com:443",
        "aistudio.google.com.evil.com:443",
        "127.0.0.1:443",
    ):
        assert not re.search(pattern, other, re.IGNORECASE)


@pytest.mark.parametrize(
    "host,path",
    [
        (RPC_HOST, "/$rpc/google.internal.alkali.applications.makersuite.v1.MakerSuiteService/ListModels"),
        (RPC_HOST, "/$rpc/google.internal.alkali.applications.makersuite.v1.MakerSuiteService/CountTokens"),
        ("aistudio.google.com", "/_/MakerSuite/jserror?error=x&rpc=MakerSuiteService%2FGenerateContent"),
        ("aistudio.google.com", "/_/MakerSuite/jserror?u=/MakerSuiteService/GenerateContent"),
        ("waa-pa.clients6.google.com", GENERATE),
        ("example.com", GENERATE),
    ],
    ids=["list-models", "count-tokens", "jserror-query", "jserror-path-like-query", "other-host", "foreign"],
)
def test_flows_other_than_generate_content_stream_through_unsniffed(tap, publisher, host, path):
    """Only GenerateContent on an AI Studio host is sniffed; everything else streams untouched."""
    flow = make_flow(host=host, path=path)
    send_request(tap, flow)
    assert flow.request.stream is True
    assert start_response(tap, flow) is True
    tap.response(flow)
    assert publisher.messages == []


def test_cors_preflight_of_generate_content_is_not_taken_for_an_answer(tap, publisher):
    """The browser's OPTIONS preflight of the RPC (empty body) publishes nothing; the POST after it does."""
    preflight = make_flow(method=b"OPTIONS", body=b"")
    send_request(tap, preflight)
    assert preflight.request.stream is True
    assert start_response(tap, preflight) is True
    tap.response(preflight)
    assert publisher.messages == []
    send_request(tap, make_flow())
    assert publisher.types() == ["stream_started"]


def test_generate_content_path_with_a_query_is_sniffed(tap, publisher):
    """The path before ``?`` decides, so a query string does not hide a GenerateContent call."""
    flow = make_flow(path=GENERATE + "?alt=json&key=abc")
    send_request(tap, flow)
    assert flow.request.stream is not True  # the body is kept to read the model
    assert callable(start_response(tap, flow))
    assert publisher.types() == ["stream_started"]


def test_stream_started_carries_url_and_model(tap, publisher):
    """``stream_started`` names the flow, the URL and the model read from the request body."""
    flow = make_flow()
    before = time.time()
    send_request(tap, flow)
    (started,) = publisher.messages
    assert isinstance(started, protocol.StreamStarted)
    assert started.id == flow.id
    assert started.url == f"https://{RPC_HOST}{GENERATE}"
    assert started.model == "gemini-2.5-pro"
    assert before <= started.ts <= time.time()


@pytest.mark.parametrize(
    "body,model",
    [
        (b'["models/gemini-2.5-flash",[]]', "gemini-2.5-flash"),
        (b' [ "models/gemma-3-27b-it" ,[]]', "gemma-3-27b-it"),
        (b'[null,"models/x"]', None),
        (b"", None),
        (b"\x1f\x8b\x08binary", None),
    ],
    ids=["plain", "whitespace", "not-first", "empty", "binary"],
)
def test_model_is_read_from_the_first_element_of_the_request_body(body, model):
    """The model id comes from ``"models/<id>"`` at index 0, else None."""
    assert model_from_body(body) == model


# --------------------------------------------------------------------------- streaming


def test_events_are_published_in_order_with_the_flow_id_while_bytes_pass_unchanged(
    tap, publisher, thinking_stream
):
    """Each chunk goes back unchanged and its events are published at once, keyed by the flow id."""
    flow = make_flow()
    send_request(tap, flow)
    on_chunk = start_response(tap, flow)
    pieces = thinking_stream.gzip_pieces()
    seen_after_each = []
    for piece in pieces:
        assert on_chunk(piece) is piece
        seen_after_each.append(len(publisher.messages))
    assert seen_after_each[4] > 1, "the first event (bytes 0-277) must be out before the body ends"
    on_chunk(b"")
    tap.response(flow)

    assert {m.id for m in publisher.messages} == {flow.id}
    assert publisher.types() == [
        "stream_started",
        "reasoning",
        "reasoning",
        "content",
        "content",
        "finish",
        "usage",
        "done",
    ]
    assert published_events(publisher) == expected_events(pieces)
    stamps = [m.ts for m in publisher.messages]
    assert stamps == sorted(stamps)
    done = publisher.messages[-1]
    assert isinstance(done, protocol.Done)
    assert set(done.timings) >= {"response_headers_s", "first_event_s", "total_s"}


def test_empty_chunks_and_the_response_hook_give_exactly_one_done(tap, publisher, thinking_stream):
    """``b""`` chunks (twice on HTTP/2) are not an end; ``response`` is, once, even if ``error`` follows."""
    flow = make_flow()
    send_request(tap, flow)
    on_chunk = start_response(tap, flow)
    assert on_chunk(b"") == b""
    for piece in thinking_stream.gzip_pieces():
        on_chunk(piece)
        on_chunk(b"")
    on_chunk(b"")
    assert "done" not in publisher.types()
    tap.response(flow)
    flow.error = mflow.Error("connection closed")
    tap.error(flow)
    tap.response(flow)
    assert publisher.types().count("done") == 1
    assert publisher.types()[-1] == "done"


def test_grounding_sources_are_published_as_protocol_grounding(tap, publisher):
    """A body with Google Search metadata publishes ``grounding`` (exact sources) before ``finish``."""
    data = gzip.compress(answer_body(7))
    flow = make_flow()
    send_request(tap, flow)
    on_chunk = start_response(tap, flow)
    pieces = [data[i : i + 9] for i in range(0, len(data), 9)]
    for piece in pieces:
        assert on_chunk(piece) is piece
    tap.response(flow)
    assert publisher.types() == [
        "stream_started",
        "content",
        "content",
        "grounding",
        "finish",
        "usage",
        "done",
    ]
    grounding = publisher.messages[3]
    assert isinstance(grounding, protocol.Grounding) and grounding.id == flow.id
    assert grounding.sources == [PARIS_SOURCE, FRANCE_SOURCE]
    assert grounding.queries == ["capital of france"]
    assert published_events(publisher) == expected_events(pieces)


def test_error_hook_mid_stream_gives_aborted_then_done(tap, publisher, thinking_stream):
    """A connection that breaks mid-body ends the stream with ``error(aborted)`` and ``done``."""
    flow = make_flow()
    send_request(tap, flow)
    on_chunk = start_response(tap, flow)
    for piece in thinking_stream.gzip_pieces()[:5]:
        on_chunk(piece)
    flow.error = mflow.Error("peer closed connection")
    tap.error(flow)
    tap.response(flow)
    *_, error, done = publisher.messages
    assert isinstance(error, protocol.Error)
    assert error.kind == "aborted"
    assert "peer closed connection" in error.message
    assert isinstance(done, protocol.Done)
    assert "finish" not in publisher.types()
    assert publisher.types().count("done") == 1


def test_error_before_any_response_gives_aborted_then_done(tap, publisher):
    """An upstream that never answers still ends the stream that ``stream_started`` opened."""
    flow = make_flow()
    send_request(tap, flow)
    flow.error = mflow.Error("Connection refused")
    tap.error(flow)
    assert publisher.types() == ["stream_started", "error", "done"]
    assert publisher.messages[1].kind == "aborted"
    assert "Connection refused" in publisher.messages[1].message


def test_http_error_status_is_reported_as_an_error_then_done(tap, publisher):
    """An upstream status >= 400 becomes a typed error from the decoder, then ``done``."""
    flow = make_flow()
    send_request(tap, flow)
    on_chunk = start_response(tap, flow, status=429, encoding=None)
    on_chunk(b'[,[8,"Resource has been exhausted (e.g. check quota)."]]')
    tap.response(flow)
    assert publisher.types() == ["stream_started", "error", "done"]
    assert publisher.messages[1].status == 429


def test_shutdown_ends_open_streams_with_a_shutdown_error_and_done(tap, publisher, thinking_stream):
    """Streams still open when mitmproxy stops get ``error(proxy_shutdown)`` + ``done``."""
    flow = make_flow()
    send_request(tap, flow)
    start_response(tap, flow)(thinking_stream.gzip_pieces()[0])
    tap.abort_all()
    assert publisher.types()[-2:] == ["error", "done"]
    error = publisher.messages[-2]
    assert error.kind == StreamProxyShutdown.kind and error.message == addon_module.SHUTDOWN_MESSAGE
    tap.response(flow)
    assert publisher.types().count("done") == 1


@pytest.mark.parametrize("reason", ["Client disconnected.", "peer closed connection"])
def test_a_stream_cut_once_shutdown_began_reports_the_shutdown_not_mitmproxys_reason(
    tap, publisher, thinking_stream, reason
):
    """The proxy cuts the browser's connections as it stops: a flow mitmproxy then fails with its
    client-side reason (HTTP/1 or HTTP/2) reports the shutdown, once, and never that reason."""
    old = make_flow()
    send_request(tap, old)
    start_response(tap, old)(thinking_stream.gzip_pieces()[0])
    tap.abort_all()
    old.error = mflow.Error(reason)
    tap.error(old)  # already ended by abort_all
    late = make_flow()  # a request on a kept-alive connection, after the listener closed
    send_request(tap, late)
    start_response(tap, late)(thinking_stream.gzip_pieces()[0])
    late.error = mflow.Error(reason)
    tap.error(late)
    errors = [m for m in publisher.messages if m.type == "error"]
    assert [(e.id, e.kind) for e in errors] == [(old.id, "proxy_shutdown"), (late.id, "proxy_shutdown")]
    assert all(reason not in e.message for e in errors)
    assert publisher.types().count("done") == 2


def test_a_failing_publisher_never_breaks_the_byte_stream(tap, thinking_stream):
    """If publishing raises, the chunk function still returns every byte unchanged."""

    def explode(msg: protocol.Message) -> int:
        raise RuntimeError("boom")

    flow = make_flow()
    send_request(tap, flow)
    on_chunk = start_response(tap, flow)
    tap.publisher.publish = explode  # type: ignore[method-assign]
    pieces = thinking_stream.gzip_pieces()
    assert b"".join(on_chunk(p) for p in pieces) == b"".join(pieces)


# --------------------------------------------------------------------------- jserror


@pytest.mark.parametrize(
    "error_text",
    [
        "Failed to generate content: RESOURCE_EXHAUSTED MakerSuiteService/GenerateContent",
        "You have exceeded quota for this model",
        "rpc error resource_exhausted",
    ],
    ids=["failed", "exceeded", "lowercase"],
)
def test_jserror_quota_report_publishes_a_quota_signal(tap, publisher, error_text):
    """A jserror GET whose URL-decoded query mentions quota gives one ``quota_signal``."""
    path = "/_/MakerSuite/jserror?script=x&error=" + urllib.parse.quote(error_text) + "&line=1"
    flow = make_flow(host="aistudio.google.com", path=path, method=b"GET", body=b"")
    send_request(tap, flow)
    (signal,) = publisher.messages
    assert isinstance(signal, protocol.QuotaSignal)
    assert signal.message == error_text


def test_jserror_without_quota_words_publishes_nothing(tap, publisher):
    """Other JS errors are ignored."""
    flow = make_flow(
        host="aistudio.google.com", path="/_/MakerSuite/jserror?error=TypeError%3A+x", method=b"GET", body=b""
    )
    send_request(tap, flow)
    assert publisher.messages == []


def test_quota_message_decodes_plus_and_percent_escapes():
    """The query is URL-decoded before matching; without ``error=`` the whole query is the message."""
    assert quota_message("/jserror?msg=Exceeded+quota%21") == "msg=Exceeded quota!"
    assert quota_message("/jserror?error=fine") is None


# --------------------------------------------------------------------------- resolve override


def hook_data(host: str, port: int = 443) -> ServerConnectionHookData:
    return ServerConnectionHookData(
        server=connection.Server(address=(host, port)), client=tflow.tclient_conn()
    )


def test_resolve_override_points_mapped_hosts_at_the_local_address_and_keeps_the_name(tap):
    """A mapped host connects to the mapped ip:port with SNI still the real name; others are untouched."""
    tap.tctx.configure(tap, aisp_resolve=f"{RPC_HOST}=127.0.0.1:8443,accounts.google.com=127.0.0.2:9443")
    data = hook_data(RPC_HOST)
    tap.server_connect(data)
    assert data.server.address == ("127.0.0.1", 8443)
    assert data.server.sni == RPC_HOST

    tunnelled = hook_data("accounts.google.com")
    tap.server_connect(tunnelled)
    assert tunnelled.server.address == ("127.0.0.2", 9443)

    other = hook_data("play.google.com")
    tap.server_connect(other)
    assert other.server.address == ("play.google.com", 443)


def test_resolve_override_turns_off_certificate_checks_only_for_mapped_connections(tap):
    """``tls_start_server`` sets VERIFY_NONE on a mapped connection and leaves others verified."""
    tap.tctx.configure(tap, aisp_resolve=f"{RPC_HOST}=127.0.0.1:8443")
    calls: dict[str, list[int]] = {}

    def tls_data(data: ServerConnectionHookData) -> SimpleNamespace:
        record = calls.setdefault(data.server.address[0], [])
        ssl_conn = SimpleNamespace(set_verify=lambda mode, cb=None: record.append(mode))
        return SimpleNamespace(conn=data.server, ssl_conn=ssl_conn)

    mapped, other = hook_data(RPC_HOST), hook_data("aistudio.google.com")
    for data in (mapped, other):
        tap.server_connect(data)
        tap.tls_start_server(tls_data(data))
    assert calls == {"127.0.0.1": [SSL.VERIFY_NONE], "aistudio.google.com": []}

    tap.server_disconnected(mapped)
    tap.tls_start_server(tls_data(mapped))
    assert calls["127.0.0.1"] == [SSL.VERIFY_NONE]


def test_a_malformed_resolve_option_is_rejected(tap):
    """A bad ``aisp_resolve`` value fails configuration with a message naming the option."""
    with pytest.raises(exceptions.OptionsError, match="aisp_resolve"):
        tap.tctx.configure(tap, aisp_resolve="aistudio.google.com=nowhere")


# --------------------------------------------------------------------------- publisher


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` holds (a state check, not a fixed delay)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
async def event_socket(short_socket_dir: Path):
    publisher = Publisher(max_buffer=64 * 1024)
    path = short_socket_dir / "proxy.sock"
    server = await channel.serve(path, publisher.handle, process="stream_proxy", version="test")
    yield publisher, path
    server.close()
    await publisher.close()


async def subscribe(path: Path) -> channel.Connection:
    """Connect and subscribe; the pong proves the subscription is registered (same read loop)."""
    conn = await channel.connect(path)
    await conn.send(protocol.Subscribe())
    await conn.send(protocol.Ping(nonce="sync"))
    assert isinstance(await conn.recv(), protocol.Pong)
    return conn


def content(i: int, text: str = "x") -> protocol.Content:
    return protocol.Content(id=f"flow-{i}", ts=time.time(), text=text)


async def test_events_with_no_subscriber_are_discarded_not_queued(event_socket):
    """Published with nobody listening, events are gone; a later subscriber sees only later events."""
    publisher, path = event_socket
    assert [publisher.publish(content(i)) for i in range(1000)] == [0] * 1000
    conn = await subscribe(path)
    assert publisher.publish(content(1000)) == 1
    async with asyncio.timeout(5):
        first = await conn.recv()
    assert first == content(1000).model_copy(update={"ts": first.ts})
    await conn.close()


async def test_every_subscriber_gets_every_event_in_order(event_socket):
    """Two subscribers each receive the published events in publish order."""
    publisher, path = event_socket
    a, b = await subscribe(path), await subscribe(path)
    for i in range(50):
        assert publisher.publish(content(i)) == 2
    for conn in (a, b):
        async with asyncio.timeout(5):
            got = [await conn.recv() for _ in range(50)]
        assert [m.id for m in got] == [f"flow-{i}" for i in range(50)]
        await conn.close()


async def test_a_subscriber_that_goes_away_is_dropped(event_socket):
    """After a subscriber disconnects, publishing skips it and the subscriber count drops."""
    publisher, path = event_socket
    conn = await subscribe(path)
    assert publisher.subscriber_count == 1
    await conn.close()
    await wait_until(lambda: publisher.subscriber_count == 0)
    assert publisher.publish(content(1)) == 0


async def test_a_slow_subscriber_is_dropped_without_blocking_the_publisher(event_socket):
    """A subscriber that never reads is cut off once its backlog passes the limit; others keep going."""
    publisher, path = event_socket
    publisher.max_buffer = 1024 * 1024
    slow = await subscribe(path)  # never reads again
    fast = await subscribe(path)
    received: list[protocol.Message] = []

    async def drain() -> None:
        async for msg in fast:
            received.append(msg)

    reader = asyncio.create_task(drain())
    big = "y" * 100_000
    in_publish = 0.0
    counts = []
    for i in range(100):
        started = time.monotonic()
        counts.append(publisher.publish(content(i, big)))
        in_publish += time.monotonic() - started
        await wait_until(lambda n=i + 1: len(received) == n)
    assert counts[0] == 2 and counts[-1] == 1
    assert publisher.subscriber_count == 1
    assert in_publish < 2.0
    assert [m.id for m in received] == [f"flow-{i}" for i in range(100)]
    reader.cancel()
    await slow.close()
    await fast.close()


def test_an_h2_stream_reset_is_not_blamed_on_the_client(tap, publisher, thinking_stream):
    """mitmproxy words an RST_STREAM from AI Studio as "stream reset by client"; the error says
    only that the HTTP/2 stream was reset, with its code."""
    flow = make_flow()
    send_request(tap, flow)
    start_response(tap, flow)(thinking_stream.gzip_pieces()[0])
    flow.error = mflow.Error("stream reset by client (INTERNAL_ERROR)")
    tap.error(flow)
    *_, error, done = publisher.messages
    assert error.kind == "aborted" and done.type == "done"
    assert error.message.endswith(": the HTTP/2 stream was reset (INTERNAL_ERROR)"), error.message
    assert addon_module.failure_reason("peer closed connection") == "peer closed connection"
