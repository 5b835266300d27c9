"""The API server's side of ``worker.sock``: one reconnecting connection.

``WorkerClient`` keeps the connection up (``shared.channel.ReconnectingClient``),
remembers the last ``WorkerStatus``, answers ``status()`` by asking the worker,
and hands every stream event to a sink (the request queue). The worker may
start slowly or restart: callers wait with ``wait_usable()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from shared import channel, protocol
from shared.errors import WorkerUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How often the status is refreshed while connected (seconds): fast while the
#: worker is starting, slow once it is usable.
POLL_STARTING_S = 1.0
POLL_READY_S = 15.0
#: The worker's answers to a request (``ask``), matched by id.
REPLIES = (protocol.SelectorsReloaded, protocol.LoginStarted, protocol.AccountImported)
USABLE_STATES = ("ready", "busy", "degraded", "login_required", "down")


class WorkerClient:
    def __init__(
        self,
        path: Path,
        *,
        max_frame: int = protocol.DEFAULT_MAX_FRAME,
        on_event: Callable[[protocol.Message], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        on_status: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.on_event = on_event
        self.on_lost = on_lost
        #: Called after every status the worker sends.
        self.on_status = on_status
        self.status_msg: protocol.WorkerStatus | None = None
        self._status_changed = asyncio.Condition()
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        self._client = channel.ReconnectingClient(
            path,
            on_message=self._on_message,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            max_frame=max_frame,
        )
        self._status_seq = 0
        #: Answers awaited from the worker, by request id.
        self._replies: dict[str, asyncio.Future[protocol.Message]] = {}
        #: Where each sign-in's frames and end go, by session (the dashboard's remote views).
        self.login_views: dict[str, Callable[[protocol.LoginFrame | protocol.LoginEnded], None]] = {}

    # ---- connection

    @property
    def connected(self) -> bool:
        return self._client.connected.is_set()

    async def run(self) -> None:
        """Connect, reconnect and poll the status until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._client.run())
            tg.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            state = self.status_msg.state if self.status_msg else None
            await asyncio.sleep(POLL_READY_S if state in ("ready", "busy") else POLL_STARTING_S)
            if self.connected:
                with contextlib.suppress(ConnectionError):
                    await self._client.send(protocol.StatusRequest())

    async def _on_connect(self, conn: channel.Connection) -> None:
        self._disconnected.clear()
        await conn.send(protocol.StatusRequest())

    async def _on_disconnect(self) -> None:
        log.warning("worker connection lost")
        self._disconnected.set()
        async with self._status_changed:
            self.status_msg = None
            self._status_changed.notify_all()
        if self.on_lost is not None:
            self.on_lost()

    async def _on_message(self, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.WorkerStatus):
            async with self._status_changed:
                if self.status_msg is None or self.status_msg.state != msg.state:
                    log.info("worker state: %s %s", msg.state, msg.message)
                self.status_msg = msg
                self._status_seq += 1
                self._status_changed.notify_all()
            if self.on_status is not None:
                self.on_status()
        elif isinstance(msg, REPLIES):
            reply = self._replies.get(msg.id)
            if reply is not None and not reply.done():
                reply.set_result(msg)
        elif isinstance(msg, protocol.LoginFrame | protocol.LoginEnded):
            view = self.login_views.get(msg.session)
            if view is not None:
                view(msg)
        elif isinstance(msg, protocol.Fault):
            log.warning("worker reported a fault: %s", msg.message)
        elif self.on_event is not None:
            self.on_event(msg)

    async def send(self, msg: protocol.Message) -> None:
        await self._client.send(msg)

    async def reload_selectors(self, timeout: float = 30.0) -> protocol.SelectorsReloaded:
        """Have the worker read ``SELECTORS_FILE`` again; its answer."""
        reply = await self.ask(protocol.SelectorsReload(id=uuid.uuid4().hex), timeout)
        assert isinstance(reply, protocol.SelectorsReloaded)
        return reply

    async def ask(
        self, msg: protocol.SelectorsReload | protocol.LoginStart | protocol.AccountImport, timeout: float
    ) -> protocol.Message:
        """Send a request and wait for the worker's answer with the same id (``WorkerUnavailable`` without one)."""
        answer: asyncio.Future[protocol.Message] = asyncio.get_running_loop().create_future()
        self._replies[msg.id] = answer
        try:
            await self._client.send(msg)
            async with asyncio.timeout(timeout):
                return await answer
        except TimeoutError:
            raise WorkerUnavailable(f"The browser worker did not answer ({msg.type}) in time.") from None
        except ConnectionError:
            raise WorkerUnavailable("The browser worker connection was lost.", retry_after=5) from None
        finally:
            self._replies.pop(msg.id, None)

    # ---- status

    async def status(self, timeout: float = 3.0) -> protocol.WorkerStatus:
        """A fresh status from the worker; ``WorkerUnavailable`` when not connected or silent."""
        if not self.connected:
            raise WorkerUnavailable(
                "The browser worker is not connected (starting or restarting).", retry_after=5
            )
        async with self._status_changed:
            seq = self._status_seq
            try:
                await self._client.send(protocol.StatusRequest())
                async with asyncio.timeout(timeout):
                    await self._status_changed.wait_for(lambda: self._status_seq != seq or not self.connected)
            except TimeoutError:
                if self.status_msg is not None and self.connected:
                    log.debug("worker slow to answer a status request; using the last status")
                    return self.status_msg
                raise WorkerUnavailable(
                    "The browser worker did not answer a status request.", retry_after=5
                ) from None
            except ConnectionError:
                raise WorkerUnavailable("The browser worker connection was lost.", retry_after=5) from None
            if self.status_msg is None:
                raise WorkerUnavailable("The browser worker connection was lost.", retry_after=5)
            return self.status_msg

    async def wait_status(
        self, pick: Callable[[protocol.WorkerStatus], T | None], timeout: float = 10.0
    ) -> T:
        """The first non-None ``pick(status)`` of the current or a later status (a fresh one is asked for);
        ``WorkerUnavailable`` after ``timeout`` or when the connection goes."""
        try:
            async with asyncio.timeout(timeout), self._status_changed:
                await self._client.send(protocol.StatusRequest())
                while True:
                    if not self.connected or self.status_msg is None:
                        raise WorkerUnavailable("The browser worker connection was lost.", retry_after=5)
                    found = pick(self.status_msg)
                    if found is not None:
                        return found
                    await self._status_changed.wait()
        except TimeoutError:
            raise WorkerUnavailable("The browser worker did not confirm the change in time.") from None
        except ConnectionError:
            raise WorkerUnavailable("The browser worker connection was lost.", retry_after=5) from None

    @property
    def known_models(self) -> list[protocol.ModelInfo]:
        return list(self.status_msg.models) if self.status_msg else []

    async def wait_usable(self) -> protocol.WorkerStatus:
        """Wait until connected and past ``starting`` (``login_required``/``down`` count: the caller decides)."""
        async with self._status_changed:
            await self._status_changed.wait_for(
                lambda: (
                    self.connected and self.status_msg is not None and self.status_msg.state in USABLE_STATES
                )
            )
            assert self.status_msg is not None
            return self.status_msg

    async def wait_disconnected(self) -> None:
        await self._disconnected.wait()
