"""The only Server-Sent Events writer.

``encode_event``/``encode_comment`` build the frames (pure, tested alone):
``data: <orjson>\\n\\n``, ``: comment\\n\\n`` and ``data: [DONE]\\n\\n``. ``SSEWriter``
prepares the ``StreamResponse`` and writes them; a departed client surfaces as
``ConnectionResetError`` (the caller cancels the job). Errors after the stream
started go out as ``data: {"error": {...}}`` (the openai SDK raises an
``APIError`` from it) followed by ``[DONE]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from shared.errors import ServiceError

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


def encode_event(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def encode_comment(text: str) -> bytes:
    lines = text.splitlines() or [""]
    return b"".join(f": {line}\n".encode() for line in lines) + b"\n"


class SSEWriter:
    def __init__(self, request: web.Request, headers: Mapping[str, str] | None = None) -> None:
        self.request = request
        self.response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                **(headers or {}),
            },
        )
        self.closed = False

    @property
    def prepared(self) -> bool:
        return self.response.prepared

    async def prepare(self) -> web.StreamResponse:
        if not self.response.prepared:
            await self.response.prepare(self.request)
        return self.response

    async def _write(self, data: bytes) -> None:
        await self.prepare()
        if self.closed:
            raise ConnectionResetError("the stream is already closed")
        await self.response.write(data)

    async def comment(self, text: str = "keep-alive") -> None:
        await self._write(encode_comment(text))

    async def event(self, data: Any) -> None:
        await self._write(encode_event(data))

    async def error(self, err: ServiceError) -> None:
        await self._write(encode_event(err.to_openai()))

    async def done(self) -> None:
        await self._write(DONE)
        await self.close()

    async def close(self) -> None:
        if not self.closed and self.response.prepared:
            self.closed = True
            try:
                await self.response.write_eof()
            except ConnectionError:
                pass
