"""The subscription to the stream proxy's events (``proxy.sock``).

``ProxyFeed`` keeps one ``ReconnectingClient`` subscribed. A job opens a
``FlowWatch`` before it submits: the watch receives every stream event, picks
the first ``GenerateContent`` flow of its slot started after the job's submit
time, drops everything from other slots or other or stale flows, and yields
that flow's events. The slot is the page's browser context, named to the proxy
as its user name (``browser.py``), which names it in every ``stream_started``. When the
subscription drops, the watch receives a ``FeedLost`` marker so the job can
continue from the DOM. ``QuotaSignal`` messages are remembered for the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from browser_worker.errors import is_empty_exchange
from shared import channel, protocol
from shared.wire import endpoints

log = logging.getLogger(__name__)

#: A flow may start this long before our own submit timestamp (clock skew, early headers).
SUBMIT_MARGIN_S = 0.5


@dataclass(frozen=True)
class FeedLost:
    """The subscription to the proxy dropped; no more events will arrive for this flow."""

    ts: float


class FlowWatch:
    """Events for one job: the first matching GenerateContent flow of ``slot`` after ``since`` (of any slot
    when the watch or the flow has none)."""

    def __init__(self, since: float, slot: str | None = None) -> None:
        self.since = since
        self.slot = slot
        self.flow_id: str | None = None
        self.flow_started: protocol.StreamStarted | None = None
        self.queue: asyncio.Queue[protocol.Message | FeedLost] = asyncio.Queue()
        self.quota: list[protocol.QuotaSignal] = []
        self.flow_seen = asyncio.Event()
        self._received = False
        self.was_lost = False

    def offer(self, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.QuotaSignal):
            if msg.ts >= self.since - SUBMIT_MARGIN_S and self._mine(msg.slot):
                self.quota.append(msg)
            return
        if isinstance(msg, protocol.StreamStarted):
            # A request without a model in its body (a CORS preflight) is not an answer.
            if (
                self.flow_id is None
                and self._mine(msg.slot)
                and msg.model
                and _is_generate(msg.url)
                and msg.ts >= self.since - SUBMIT_MARGIN_S
            ):
                self.flow_id = msg.id
                self.flow_started = msg
                self._received = False
                self.flow_seen.set()
                self.queue.put_nowait(msg)
            return
        if self.flow_id is None or getattr(msg, "id", None) != self.flow_id:
            return
        if isinstance(msg, protocol.Error) and not self._received and is_empty_exchange(msg):
            # An empty, aborted exchange (e.g. a preflight): wait for the real flow instead.
            log.info("ignoring empty flow %s: %s", msg.id, msg.message)
            self.flow_id = None
            self.flow_started = None
            return
        if isinstance(msg, protocol.Reasoning | protocol.Content | protocol.ToolCall):
            self._received = True
        self.queue.put_nowait(msg)

    def _mine(self, slot: str | None) -> bool:
        return self.slot is None or slot is None or slot == self.slot

    def lost(self) -> None:
        self.was_lost = True
        self.queue.put_nowait(FeedLost(ts=time.time()))

    async def events(self) -> AsyncIterator[protocol.Message | FeedLost]:
        while True:
            yield await self.queue.get()


def _is_generate(url: str) -> bool:
    path = urlsplit(url).path if url else ""
    return endpoints.is_generate_content(path) and endpoints.JSERROR_FRAGMENT not in path


class ProxyFeed:
    """Stay subscribed to ``proxy.sock`` and fan its messages out to open watches."""

    def __init__(
        self,
        path: Path,
        *,
        max_frame: int = protocol.DEFAULT_MAX_FRAME,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.on_change = on_change
        self._watches: list[FlowWatch] = []
        #: What came from the stream proxy (``proxy_*`` in the worker's status counts, and ``/metrics``).
        self.counts = {"proxy_streams": 0, "proxy_events": 0, "proxy_subscription_losses": 0}
        self.client = channel.ReconnectingClient(
            path,
            on_message=self._on_message,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            max_frame=max_frame,
            max_backoff=1.0,
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.client.connected.is_set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self.client.run(), name="proxy-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn = self.client.conn
        if conn is not None:
            await conn.close()

    async def _on_connect(self, conn: channel.Connection) -> None:
        await conn.send(protocol.Subscribe())
        if self.on_change is not None:
            asyncio.get_running_loop().call_soon(self.on_change)

    async def _on_message(self, msg: protocol.Message) -> None:
        self.counts["proxy_streams" if isinstance(msg, protocol.StreamStarted) else "proxy_events"] += 1
        for watch in list(self._watches):
            watch.offer(msg)

    async def _on_disconnect(self) -> None:
        self.counts["proxy_subscription_losses"] += 1
        for watch in list(self._watches):
            watch.lost()
        if self.on_change is not None:
            self.on_change()

    @contextlib.contextmanager
    def watch(self, since: float, slot: str | None = None) -> Iterator[FlowWatch]:
        w = FlowWatch(since, slot)
        self._watches.append(w)
        try:
            yield w
        finally:
            self._watches.remove(w)

    async def drop_connection(self) -> None:
        """Close the current subscription (it reconnects by itself); used by tests and recovery."""
        conn = self.client.conn
        if conn is not None:
            await conn.close()
