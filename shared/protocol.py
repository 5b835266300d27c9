"""The one framed protocol spoken over the project's Unix sockets.

A frame is a 4-byte big-endian length followed by that many bytes of orjson.
Each frame holds one message, a pydantic model discriminated by its ``type``.

Who talks to whom:

* ``stream_proxy`` serves ``proxy.sock``. A subscriber (the browser worker)
  sends ``subscribe``; the proxy then publishes stream events keyed by flow id
  (``stream_started``, ``reasoning``, ``content``, ``tool_call``, ``grounding``,
  ``usage``, ``finish``, ``error``, ``done``) and ``quota_signal`` for jserror
  reports.
* ``browser_worker`` serves ``worker.sock``. The API server sends
  ``job_submit`` / ``job_cancel`` / ``status_request``; the worker answers with
  ``job_accepted``, then the same stream events keyed by request id, ending with
  ``done``; and ``status``.
* ``api_server`` serves ``api.sock`` for control (``ping``).

The stream events from ``reasoning`` to ``done`` are one vocabulary from the wire
to the API: the GenerateContent decoder (``shared/wire/decoder.py``) yields these
very messages, the proxy publishes them as they come, and the worker passes them
on under the request id.

Every server answers ``ping`` with ``pong``. This module is sans-IO apart from
the small asyncio helpers at the end (``serve``, ``connect``, ``Connection``,
``ReconnectingClient``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

log = logging.getLogger(__name__)

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 128 * 1024 * 1024


class FrameError(Exception):
    """A frame could not be read: oversized, not JSON, or not a known message."""


# --------------------------------------------------------------------------- messages


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ping(Message):
    type: Literal["ping"] = "ping"
    nonce: str = ""


class Pong(Message):
    type: Literal["pong"] = "pong"
    nonce: str = ""
    process: str
    pid: int
    version: str


class Fault(Message):
    """The peer sent something this end could not handle; the connection closes."""

    type: Literal["fault"] = "fault"
    message: str


# ---- stream events: ``id`` is a flow id (proxy) or a request id (worker)


class StreamStarted(Message):
    type: Literal["stream_started"] = "stream_started"
    id: str
    ts: float
    url: str = ""
    model: str | None = None


class Reasoning(Message):
    type: Literal["reasoning"] = "reasoning"
    id: str
    ts: float
    text: str


class Content(Message):
    type: Literal["content"] = "content"
    id: str
    ts: float
    text: str


class ToolCall(Message):
    type: Literal["tool_call"] = "tool_call"
    id: str
    ts: float
    name: str
    arguments: dict[str, Any]
    call_id: str | None = None


class Grounding(Message):
    """Google Search sources (``{"uri", "title", "domain"}`` each) and queries, new in this answer."""

    type: Literal["grounding"] = "grounding"
    id: str
    ts: float
    sources: list[dict[str, Any]]
    queries: list[str] = Field(default_factory=list)


class Usage(Message):
    type: Literal["usage"] = "usage"
    id: str
    ts: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    estimated: bool = False


class Finish(Message):
    """The answer's end: why it ended and, from the worker, which capture tiers delivered it."""

    type: Literal["finish"] = "finish"
    id: str
    ts: float
    reason: str
    #: ``stream``, ``helper`` or ``dom``, joined by ``+`` when a tier took over mid-answer
    #: (``stream+dom``); empty on the proxy's own events.
    capture: str = ""


class Error(Message):
    """A typed failure; ``kind`` is a key of ``shared.errors.KINDS``."""

    type: Literal["error"] = "error"
    id: str
    ts: float
    kind: str
    message: str
    status: int | None = None
    retry_after: float | None = None


class Done(Message):
    type: Literal["done"] = "done"
    id: str
    ts: float
    timings: dict[str, float] = Field(default_factory=dict)


class QuotaSignal(Message):
    """The page reported a quota failure through jserror (docs/aistudio.md §4.10)."""

    type: Literal["quota_signal"] = "quota_signal"
    ts: float
    message: str


class Subscribe(Message):
    type: Literal["subscribe"] = "subscribe"


# ---- jobs (api_server -> browser_worker)


class Attachment(Message):
    """A file the worker uploads through the page; written by the API server."""

    path: str
    name: str
    mime_type: str
    size: int


class Job(Message):
    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    stop: list[str] | None = None
    reasoning_effort: str | int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    attachments: list[Attachment] = Field(default_factory=list)


class JobSubmit(Message):
    type: Literal["job_submit"] = "job_submit"
    id: str
    job: Job


class JobCancel(Message):
    type: Literal["job_cancel"] = "job_cancel"
    id: str


class JobAccepted(Message):
    """The worker started working on the job (it left the API's queue)."""

    type: Literal["job_accepted"] = "job_accepted"
    id: str
    ts: float


class StatusRequest(Message):
    type: Literal["status_request"] = "status_request"


class ModelInfo(Message):
    id: str
    display_name: str
    description: str = ""
    raw_model_path: str = ""
    input_token_limit: int | None = None
    output_token_limit: int | None = None
    default_temperature: float = 1.0
    default_top_p: float | None = None
    thinking: str = "none"


class WorkerStatus(Message):
    type: Literal["status"] = "status"
    state: Literal["starting", "ready", "busy", "login_required", "degraded", "down"]
    message: str = ""
    model: str | None = None
    models: list[ModelInfo] = Field(default_factory=list)
    self_test: dict[str, bool] = Field(default_factory=dict)
    last_error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    capture: str = ""
    proxy_connected: bool = False
    current_job: str | None = None


AnyMessage = Annotated[
    Ping | Pong | Fault | StreamStarted | Reasoning | Content | ToolCall | Grounding | Usage | Finish | Error | Done | QuotaSignal | Subscribe | JobSubmit | JobCancel | JobAccepted | StatusRequest | WorkerStatus,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[Any] = TypeAdapter(AnyMessage)

#: Event types that make up one answer stream, in the order a consumer sees them.
STREAM_EVENTS = (StreamStarted, Reasoning, Content, ToolCall, Grounding, Usage, Finish, Error, Done)


def encode(msg: Message) -> bytes:
    """One frame: length prefix + orjson body."""
    body = orjson.dumps(msg.model_dump(mode="json"))
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> Message:
    """Parse one frame body into its message class."""
    try:
        msg: Message = _adapter.validate_json(body)
        return msg
    except ValidationError as exc:
        first: Any = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise FrameError(f"invalid message: {first.get('msg', exc)} at {where or 'top'}") from None


class FrameDecoder:
    """Sans-IO frame reader: ``feed(bytes)`` returns the messages completed so far.

    Raises ``FrameError`` on an oversized or malformed frame; the caller closes
    the connection, since the stream position can no longer be trusted.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while len(self._buf) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buf)
            if length > self.max_frame:
                raise FrameError(f"frame of {length} bytes exceeds the limit of {self.max_frame}")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            body = bytes(self._buf[HEADER.size : end])
            del self._buf[:end]
            out.append(decode_body(body))
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered toward an incomplete frame."""
        return len(self._buf)


# --------------------------------------------------------------------------- asyncio helpers


class Connection:
    """One framed connection over a stream pair."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        name: str = "",
        identity: tuple[str, str] | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.name = name
        #: (process, version): when set, ``ping`` is answered here and never returned.
        self.identity = identity
        self._decoder = FrameDecoder(max_frame)
        self._pending: list[Message] = []
        self._write_lock = asyncio.Lock()

    async def send(self, msg: Message) -> None:
        """Write one message; raises ``ConnectionError`` when the peer is gone."""
        if self.writer.is_closing():
            raise ConnectionResetError(f"connection {self.name} is closed")
        async with self._write_lock:
            self.writer.write(encode(msg))
            await self.writer.drain()

    def send_nowait(self, msg: Message) -> bool:
        """Queue one message without waiting; False when the peer is gone or too slow.

        Used where the caller must never block (mitmproxy's loop). A peer whose
        unsent buffer grows past 64 MiB is treated as gone.
        """
        if self.writer.is_closing():
            return False
        transport = self.writer.transport
        if transport.get_write_buffer_size() > 64 * 1024 * 1024:
            return False
        self.writer.write(encode(msg))
        return True

    async def recv(self) -> Message | None:
        """The next message, or None at end of stream. Raises ``FrameError``."""
        while True:
            while not self._pending:
                data = await self.reader.read(256 * 1024)
                if not data:
                    if self._decoder.pending:
                        raise FrameError("connection closed inside a frame")
                    return None
                self._pending.extend(self._decoder.feed(data))
            msg = self._pending.pop(0)
            if self.identity is not None and isinstance(msg, Ping):
                process, version = self.identity
                await self.send(Pong(nonce=msg.nonce, process=process, pid=os.getpid(), version=version))
                continue
            return msg

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> Message:
        msg = await self.recv()
        if msg is None:
            raise StopAsyncIteration
        return msg

    @property
    def closed(self) -> bool:
        return self.writer.is_closing()

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


Handler = Callable[[Connection], Awaitable[None]]


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class SocketServer:
    """A Unix-socket server shaped like ``asyncio.Server`` that also drops its peers.

    ``close()`` stops listening, closes every live connection and removes the
    socket file; ``wait_closed()`` then waits for the handlers to finish. (On
    Python 3.12, ``asyncio.Server.wait_closed()`` waits for connected peers, so
    a shutdown that did not close them would hang.)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if not conn.writer.is_closing():
                conn.writer.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    async def aclose(self) -> None:
        """``close()`` and ``wait_closed()`` in one call."""
        self.close()
        await self.wait_closed()


async def serve(
    path: Path,
    handler: Handler,
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    process: str = "",
    version: str = "",
) -> SocketServer:
    """Serve ``handler`` on a Unix socket at ``path`` (mode 0600, dir 0700).

    ``ping`` is answered by the connection itself, before the handler sees it. A
    malformed or oversized frame, or an exception in the handler, closes that
    connection with a logged reason; the server keeps serving others.
    """
    ensure_private_dir(path.parent)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = SocketServer(path)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(reader, writer, max_frame=max_frame, name=path.name, identity=(process, version))
        server.connections.add(conn)
        try:
            await handler(conn)
        except FrameError as exc:
            log.warning("closing a connection on %s: %s", path.name, exc)
            with contextlib.suppress(Exception):
                await conn.send(Fault(message=str(exc)))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed on %s; closing that connection", path.name)
        finally:
            server.connections.discard(conn)
            await conn.close()

    old_umask = os.umask(0o177)
    try:
        server._server = await asyncio.start_unix_server(on_connect, path=str(path), limit=2**20)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server


async def connect(path: Path, *, max_frame: int = DEFAULT_MAX_FRAME) -> Connection:
    """Open one connection to a Unix-socket server; raises ``OSError`` if none listens."""
    reader, writer = await asyncio.open_unix_connection(str(path), limit=2**20)
    return Connection(reader, writer, max_frame=max_frame, name=path.name)


async def ping(path: Path, *, timeout: float = 5.0) -> Pong:
    """Ping the server at ``path`` once and return its ``pong``."""
    async with asyncio.timeout(timeout):
        conn = await connect(path)
        try:
            nonce = f"{random.getrandbits(32):08x}"
            await conn.send(Ping(nonce=nonce))
            while True:
                msg = await conn.recv()
                if msg is None:
                    raise ConnectionResetError(f"{path.name} closed without answering ping")
                if isinstance(msg, Pong) and msg.nonce == nonce:
                    return msg
        finally:
            await conn.close()


class ReconnectingClient:
    """Keeps one connection to a server alive, reconnecting with capped backoff.

    ``on_connect(conn)`` runs after each (re)connect, e.g. to send ``subscribe``;
    ``on_message(msg)`` gets every message; ``on_disconnect()`` runs when a
    connection is lost. ``run()`` loops until cancelled.
    """

    def __init__(
        self,
        path: Path,
        *,
        on_message: Callable[[Message], Awaitable[None]],
        on_connect: Callable[[Connection], Awaitable[None]] | None = None,
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        initial_backoff: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:
        self.path = path
        self.on_message = on_message
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.max_frame = max_frame
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.conn: Connection | None = None
        self.connected = asyncio.Event()

    async def send(self, msg: Message) -> None:
        """Send on the current connection; raises ``ConnectionError`` when there is none."""
        if self.conn is None or self.conn.closed:
            raise ConnectionResetError(f"not connected to {self.path.name}")
        await self.conn.send(msg)

    async def run(self) -> None:
        backoff = self.initial_backoff
        while True:
            try:
                conn = await connect(self.path, max_frame=self.max_frame)
            except OSError:
                await asyncio.sleep(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = self.initial_backoff
            self.conn = conn
            try:
                if self.on_connect is not None:
                    await self.on_connect(conn)
                self.connected.set()
                log.info("connected to %s", self.path.name)
                async for msg in conn:
                    await self.on_message(msg)
            except FrameError as exc:
                log.warning("dropping connection to %s: %s", self.path.name, exc)
            except ConnectionError:
                pass
            finally:
                self.connected.clear()
                self.conn = None
                await conn.close()
                if self.on_disconnect is not None:
                    await self.on_disconnect()
            log.info("lost connection to %s; reconnecting", self.path.name)
