"""Capture tier 2: the answer's body from an external stream helper (``HELPER_ENDPOINT``).

The contract (README, "The stream helper"): ``GET <HELPER_ENDPOINT>?since=<unix
seconds>`` with the cookie ``SAPISID`` of the signed-in account answers with the
body of the first GenerateContent response the browser received at or after
``since``, in the same wire format (same status, any ``Content-Encoding``),
streamed as it arrives. The simulator serves one (``--helper-port``).

The body is decoded with the decoder the stream proxy uses
(``shared/wire/decoder.py``), so the events are the ones the proxy would have
published, keyed ``helper``. ``HelperClient.events`` ends with the
body's ``Done``, or with ``HelperLost`` when the helper cannot give the answer:
unreachable, a refusal of its own (a status ≥ 400 without the wire's
``application/json+protobuf`` type), or a body that breaks off or is not in the
wire format. The caller then carries on from the page.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from shared import protocol
from shared.wire import endpoints
from shared.wire.decoder import Event, ResponseDecoder

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
#: Error kinds that say the helper's body could not be read, not that AI Studio failed.
UNREADABLE = ("aborted", "protocol")


@dataclass(frozen=True)
class HelperLost:
    """The helper cannot give (the rest of) this answer."""

    reason: str


class HelperClient:
    """Fetches and decodes one answer per call of ``events``; one HTTP session per worker."""

    def __init__(self, endpoint: str, sapisid: Callable[[], Awaitable[str | None]]) -> None:
        self.endpoint = endpoint
        self._sapisid = sapisid
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                auto_decompress=False,  # the decoder takes the body as it is on the wire
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S),
            )
        return self._session

    async def events(self, since: float) -> AsyncGenerator[protocol.Message | HelperLost, None]:
        """The answer's events (keyed ``helper``) up to ``Done``, or up to a ``HelperLost``."""
        sapisid = await self._sapisid()
        if not sapisid:
            yield HelperLost("no SAPISID cookie in the browser's session")
            return
        headers = {"Cookie": f"SAPISID={sapisid}", "Accept-Encoding": "gzip, deflate, br, zstd"}
        try:
            async with self._client().get(
                self.endpoint, params={"since": f"{since:.3f}"}, headers=headers
            ) as resp:
                ctype = resp.headers.get("Content-Type", "")
                if resp.status >= 400 and not ctype.startswith(endpoints.WIRE_CONTENT_TYPE):
                    text = (await resp.content.read(300)).decode("utf-8", "replace")
                    yield HelperLost(f"the helper answered HTTP {resp.status}: {text.strip()}")
                    return
                decoder = ResponseDecoder(
                    resp.status, resp.headers.get("Content-Encoding"), stream_id="helper"
                )
                async for chunk in resp.content.iter_any():
                    for event in decoder.feed(chunk):
                        yield _message(event)
                    if decoder.done:
                        return
                for event in decoder.close():
                    yield _message(event)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            yield HelperLost(f"the helper failed: {exc or type(exc).__name__}")


def _message(event: Event) -> Event | HelperLost:
    if isinstance(event, protocol.Error) and event.kind in UNREADABLE:
        return HelperLost(f"the helper's body is unusable: {event.message}")
    return event
