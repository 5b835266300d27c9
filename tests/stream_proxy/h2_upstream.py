"""An HTTP/2-only HTTPS server standing in for AI Studio's RPC host in the proxy tests.

The real ``alkalimakersuite-pa.clients6.google.com`` answers over HTTP/2; the simulator (aiohttp)
speaks only HTTP/1.1. This server is built on ``h2`` (a mitmproxy dependency) and offers only
``h2`` in ALPN, so a connection that reaches it is HTTP/2 or is refused and recorded as such.

* ``POST …/MakerSuiteService/GenerateContent`` answers with the next queued :class:`Reply`: its
  headers, then each frame as one DATA frame, then its ending (END_STREAM, RST_STREAM or a dropped
  connection). Every step waits for its own ``asyncio.Event`` and reports when it was written, so
  a test decides when each piece leaves and can tell what had left when something arrived.
* any other ``GET`` gets a small HTML page (somewhere for a browser to navigate to);
* everything else gets 404.

``connections`` and ``requests`` record what arrived (ALPN, SNI, pseudo-headers, body).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from hyperframe.frame import GoAwayFrame

GENERATE_SUFFIX = "MakerSuiteService/GenerateContent"
JSPB = "application/json+protobuf; charset=UTF-8"
PAGE = b"<!doctype html><title>h2 stand-in</title><p>ok</p>"

#: How a reply ends: END_STREAM, RST_STREAM(INTERNAL_ERROR), or the TCP connection cut with no GOAWAY.
Ending = Literal["end", "reset", "drop"]


@dataclass(eq=False)
class Reply:
    """One scripted GenerateContent answer; steps are the frames, then the ending.

    ``hold`` lists frame indexes that wait for :meth:`release`; ``hold_ending`` makes the ending
    wait for :meth:`release_ending`. ``sent[i]`` is set once frame ``i`` was handed to the socket,
    ``ended`` once the ending was.
    """

    frames: list[bytes]
    status: int = 200
    content_type: str = JSPB
    content_encoding: str | None = "gzip"
    ending: Ending = "end"
    hold: Iterable[int] = ()
    hold_ending: bool = False
    #: send GOAWAY(NO_ERROR, last stream = this one) before this frame, then finish the stream
    goaway_before: int | None = None
    gates: list[asyncio.Event] = field(init=False)
    ending_gate: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    sent: list[asyncio.Event] = field(init=False)
    ended: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        held = {i % len(self.frames) for i in self.hold}
        self.gates = [asyncio.Event() for _ in self.frames]
        for i, gate in enumerate(self.gates):
            if i not in held:
                gate.set()
        if not self.hold_ending:
            self.ending_gate.set()
        self.sent = [asyncio.Event() for _ in self.frames]
        if self.goaway_before is not None:
            self.goaway_before %= len(self.frames)

    def release(self, index: int) -> None:
        self.gates[index].set()

    def release_ending(self) -> None:
        self.ending_gate.set()

    def release_all(self) -> None:
        for gate in self.gates:
            gate.set()
        self.ending_gate.set()


@dataclass
class Connection:
    """One accepted TLS connection: what ALPN and SNI it negotiated."""

    alpn: str | None
    sni: str | None


@dataclass
class Request:
    connection: Connection
    stream_id: int
    method: str
    authority: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


class _Session:
    """The h2 state machine of one connection and its socket writer."""

    def __init__(self, conn: h2.connection.H2Connection, writer: asyncio.StreamWriter) -> None:
        self.conn = conn
        self.writer = writer
        self.window = asyncio.Event()  # set whenever the peer may have opened a flow-control window

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def send_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        """Send ``data`` as one DATA frame when flow control allows (more frames only if it must)."""
        while True:
            room = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            if room >= len(data):
                self.conn.send_data(stream_id, data, end_stream=end_stream)
                break
            if room > 0:
                self.conn.send_data(stream_id, data[:room])
                data = data[room:]
                continue
            self.window.clear()
            await self.window.wait()
        await self.flush()


class H2Upstream:
    """The server; use ``async with H2Upstream(cert, key) as upstream`` and queue replies with ``answer``."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["h2"])
        self.ctx.sni_callback = self._on_sni
        self._sni: dict[int, str | None] = {}
        self.replies: deque[Reply] = deque()
        self.connections: list[Connection] = []
        self.requests: list[Request] = []
        #: (stream id, error code) of every RST_STREAM the peer sent
        self.resets_received: list[tuple[int, int]] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def answer(self, reply: Reply) -> Reply:
        """Queue ``reply`` for the next GenerateContent request."""
        self.replies.append(reply)
        return reply

    async def __aenter__(self) -> H2Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for reply in self.replies:
            reply.release_all()
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _on_sni(self, sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self._sni[id(sslobj)] = name

    # -- one connection --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        sslobj = writer.get_extra_info("ssl_object")
        info = Connection(sslobj.selected_alpn_protocol(), self._sni.pop(id(sslobj), None))
        self.connections.append(info)
        streams: dict[int, asyncio.Task[None]] = {}
        try:
            if info.alpn != "h2":
                return  # this server speaks HTTP/2 only; the refusal stays recorded
            config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
            session = _Session(h2.connection.H2Connection(config=config), writer)
            session.conn.initiate_connection()
            await session.flush()
            heads: dict[int, list[tuple[str, str]]] = {}
            bodies: dict[int, bytearray] = {}
            while data := await reader.read(65536):
                try:
                    events = session.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    await session.flush()
                    return
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        heads[event.stream_id] = list(event.headers)
                        bodies[event.stream_id] = bytearray()
                    elif isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] += event.data
                        session.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        request = self._request(info, event.stream_id, heads, bodies)
                        streams[event.stream_id] = asyncio.create_task(self._respond(session, request))
                    elif isinstance(event, h2.events.StreamReset):
                        self.resets_received.append((event.stream_id, event.error_code))
                        if event.stream_id in streams:
                            streams[event.stream_id].cancel()
                    elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                        session.window.set()
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        return
                await session.flush()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            for stream in streams.values():
                stream.cancel()
            await asyncio.gather(*streams.values(), return_exceptions=True)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self._tasks.discard(task)

    def _request(
        self,
        info: Connection,
        stream_id: int,
        heads: dict[int, list[tuple[str, str]]],
        bodies: dict[int, bytearray],
    ) -> Request:
        headers = heads.pop(stream_id)
        pseudo = dict(h for h in headers if h[0].startswith(":"))
        request = Request(
            info,
            stream_id,
            pseudo.get(":method", ""),
            pseudo.get(":authority", ""),
            pseudo.get(":path", ""),
            [h for h in headers if not h[0].startswith(":")],
            bytes(bodies.pop(stream_id)),
        )
        self.requests.append(request)
        return request

    async def _respond(self, session: _Session, request: Request) -> None:
        conn, sid = session.conn, request.stream_id
        try:
            path = request.path.split("?", 1)[0]
            if request.method == "POST" and path.endswith(GENERATE_SUFFIX):
                if not self.replies:
                    conn.send_headers(sid, [(":status", "500")], end_stream=True)
                    await session.flush()
                    return
                await self._play(session, sid, self.replies.popleft())
            elif request.method == "GET":
                head = [(":status", "200"), ("content-type", "text/html"), ("content-length", str(len(PAGE)))]
                conn.send_headers(sid, head)
                await session.send_data(sid, PAGE, end_stream=True)
            else:
                conn.send_headers(sid, [(":status", "404")], end_stream=True)
                await session.flush()
        except (h2.exceptions.StreamClosedError, ConnectionError):
            pass  # the peer reset the stream or left

    async def _play(self, session: _Session, sid: int, reply: Reply) -> None:
        head = [(":status", str(reply.status)), ("content-type", reply.content_type)]
        if reply.content_encoding:
            head.append(("content-encoding", reply.content_encoding))
        session.conn.send_headers(sid, head)
        await session.flush()
        last = len(reply.frames) - 1
        for i, frame in enumerate(reply.frames):
            await reply.gates[i].wait()
            if i == reply.goaway_before:
                # A graceful drain (RFC 9113 §6.8): no new streams, but this one may still finish.
                # Written raw: h2 itself refuses to send anything after its own GOAWAY.
                session.writer.write(GoAwayFrame(0, last_stream_id=sid, error_code=0).serialize())
            # The common case ends the stream with the last DATA frame; otherwise with its own frame.
            end_here = i == last and reply.ending == "end" and reply.ending_gate.is_set()
            await session.send_data(sid, frame, end_stream=end_here)
            reply.sent[i].set()
            if end_here:
                reply.ended.set()
                return
        await reply.ending_gate.wait()
        if reply.ending == "end":
            session.conn.end_stream(sid)
        elif reply.ending == "reset":
            session.conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
        if reply.ending == "drop":
            session.writer.transport.abort()  # no GOAWAY, no TLS close_notify: the connection just dies
        else:
            await session.flush()
        reply.ended.set()
