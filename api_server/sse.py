"""The only stream writer, and the Server-Sent Events frames.

``encode_event``/``encode_named_event``/``encode_comment`` build the frames (pure, tested
alone): ``data: <orjson>\\n\\n``, ``event: <name>\\ndata: <orjson>\\n\\n``, ``: comment\\n\\n``
and ``data: [DONE]\\n\\n``. ``SSEWriter`` prepares the ``StreamResponse`` and writes what a
dialect's renderer encoded (``api_server/delivery.py``); a departed client surfaces as
``ConnectionResetError`` (the caller cancels the job).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


def encode_event(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def encode_comment(text: str) -> bytes:
    lines = text.splitlines() or [""]
    return b"".join(f": {line}\n".encode() for line in lines) + b"\n"


def encode_named_event(name: str, data: Any) -> bytes:
    """An event with a name (``event: <name>``), as Anthropic's and the Responses API's streams send."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class SSEWriter:
    """Writes a stream (``text/event-stream`` unless ``content_type`` says otherwise: Gemini's JSON-array
    stream goes through it too)."""

    def __init__(
        self,
        request: web.Request,
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/event-stream; charset=utf-8",
    ) -> None:
        self.request = request
        self.response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": content_type,
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

    async def send(self, data: bytes) -> None:
        """Write frames already encoded (nothing when empty)."""
        if data:
            await self._write(data)

    async def close(self) -> None:
        if not self.closed and self.response.prepared:
            self.closed = True
            try:
                await self.response.write_eof()
            except ConnectionError:
                pass
