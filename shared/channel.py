"""The asyncio side of the framed protocol (``shared/protocol.py``): connections over Unix sockets.

* ``serve(path, handler)``: a ``SocketServer`` on a socket file in a private (0700) folder,
  answering ``ping`` itself; ``connect(path)`` and ``ping(path)`` for clients.
* ``Connection``: one framed connection (``send``, ``async for msg in conn``, ``close``).
* ``ReconnectingClient``: a client that keeps its connection up, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from shared.protocol import DEFAULT_MAX_FRAME, Fault, FrameDecoder, FrameError, Message, Ping, Pong, encode

log = logging.getLogger(__name__)


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
