"""The request queue and its dispatcher: as many jobs at once as the worker has slots.

A ``Ticket`` is one request. Its ``inbox`` receives everything that
concerns it: ``Started`` when the dispatcher has submitted it, the worker's
stream events, and ``Abort(error)`` from a cancel, a lost worker connection or
shutdown. The handler reads only the inbox.

Order: the API keys that have waiting requests take turns (``FairQueue``), each
key's oldest request first, so one busy client cannot starve another; without
keys (one owner) that is plain first in, first out. ``QUEUE_LIMIT`` caps the
waiting requests overall, ``QUEUE_LIMIT_PER_KEY`` those of one key.

``RequestQueue.dispatch()`` (a long-lived task, see ``lifecycle``) takes the
next ticket whenever fewer than the worker's ``capacity`` (its slots, from its
status) are running, waits until the worker is usable and sends ``JobSubmit``.
A ticket that leaves while running (client gone, cancel, timeout) has
``JobCancel`` sent and keeps its slot until the worker confirms the end
(``error``/``done``) or a short drain timeout passes, so a page is never asked
to run two generations.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shared import protocol
from shared.errors import LoginRequired, QueueFull, ServiceError, WorkerUnavailable

if TYPE_CHECKING:
    from api_server.worker_client import WorkerClient

log = logging.getLogger(__name__)

CANCEL_DRAIN_S = 10.0


@dataclass(frozen=True)
class Started:
    """The job was submitted to the worker."""


@dataclass(frozen=True)
class Abort:
    """End the ticket with ``error``."""

    error: ServiceError


InboxItem = protocol.Message | Started | Abort


@dataclass(eq=False)
class Ticket:
    id: str
    job: protocol.Job
    stream: bool
    created: float = field(default_factory=time.monotonic)
    state: Literal["queued", "running", "draining", "done"] = "queued"
    inbox: asyncio.Queue[InboxItem] = field(default_factory=asyncio.Queue)
    #: The worker ended the job (``error``/``done`` seen, or the connection was lost).
    terminal: asyncio.Event = field(default_factory=asyncio.Event)
    #: The dispatcher may take the next ticket.
    released: asyncio.Event = field(default_factory=asyncio.Event)
    #: Runs once when the ticket leaves for good (deletes its attachment folder).
    cleanup: Callable[[], None] | None = None
    #: The client key that sent it (None: the admin, or keyless mode) and the client's own tracing id.
    owner: str | None = None
    client_request_id: str | None = None
    #: The worker's page running it (from ``job_accepted``).
    slot: str | None = None
    #: The worker's stages of the run, ms (from ``done``).
    timings: dict[str, float] = field(default_factory=dict)
    #: The run settings the page could not show or set, which the job runs without (a ``stage`` message).
    degraded: list[str] = field(default_factory=list)

    def abort(self, error: ServiceError) -> None:
        self.inbox.put_nowait(Abort(error))

    def close(self) -> None:
        self.state = "done"
        self.released.set()
        if self.cleanup is not None:
            cleanup, self.cleanup = self.cleanup, None
            try:
                cleanup()
            except Exception:
                log.exception("cleaning up after %s failed", self.id)


class FairQueue:
    """Waiting tickets, served round-robin among their owners (oldest first within one owner).

    Owners take turns in the order they started waiting; an owner who was served goes to the back of
    the turn order, one who has nothing left waiting leaves it. Iterating gives the serving order.
    """

    def __init__(self) -> None:
        self._by_owner: dict[str | None, collections.deque[Ticket]] = {}
        #: Owners with waiting tickets, the next to be served first.
        self._turns: collections.deque[str | None] = collections.deque()

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_owner.values())

    def __bool__(self) -> bool:
        return bool(self._turns)

    def __contains__(self, ticket: Ticket) -> bool:
        return ticket in self._by_owner.get(ticket.owner, ())

    def __iter__(self) -> Iterator[Ticket]:
        """The tickets in the order they would be served."""
        queues = [list(self._by_owner[owner]) for owner in self._turns]
        for i in range(max(map(len, queues), default=0)):
            yield from (q[i] for q in queues if i < len(q))

    def count(self, owner: str | None) -> int:
        return len(self._by_owner.get(owner, ()))

    def append(self, ticket: Ticket) -> None:
        waiting = self._by_owner.get(ticket.owner)
        if waiting is None:
            waiting = self._by_owner[ticket.owner] = collections.deque()
            self._turns.append(ticket.owner)
        waiting.append(ticket)

    def appendleft(self, ticket: Ticket) -> None:
        """Put ``ticket`` back at the very front (it could not be submitted)."""
        waiting = self._by_owner.get(ticket.owner)
        if waiting is None:
            waiting = self._by_owner[ticket.owner] = collections.deque()
        else:
            self._turns.remove(ticket.owner)
        self._turns.appendleft(ticket.owner)
        waiting.appendleft(ticket)

    def peek(self) -> Ticket:
        return self._by_owner[self._turns[0]][0]

    def popleft(self) -> Ticket:
        owner = self._turns.popleft()
        waiting = self._by_owner[owner]
        ticket = waiting.popleft()
        if waiting:
            self._turns.append(owner)
        else:
            del self._by_owner[owner]
        return ticket

    def remove(self, ticket: Ticket) -> None:
        waiting = self._by_owner[ticket.owner]
        waiting.remove(ticket)
        if not waiting:
            del self._by_owner[ticket.owner]
            self._turns.remove(ticket.owner)


class RequestQueue:
    """Tickets served fairly among keys, at most ``limit`` waiting (``limit_per_key`` per key), as many
    running as the worker has slots."""

    def __init__(self, limit: int, worker: WorkerClient, *, limit_per_key: int | None = None) -> None:
        self.limit = limit
        self.limit_per_key = limit_per_key
        self.worker = worker
        self._waiting = FairQueue()
        #: Running (and draining) tickets, in the order they were submitted.
        self._running: dict[str, Ticket] = {}
        self._tickets: dict[str, Ticket] = {}
        self._changed = asyncio.Condition()
        self.closed = False
        #: Jobs submitted so far: a waiting ticket's deadline restarts whenever this moves.
        self.submitted = 0
        self._drains: set[asyncio.Task[None]] = set()

    # ---- bookkeeping

    def __len__(self) -> int:
        return len(self._waiting) + len(self._running)

    @property
    def busy(self) -> bool:
        """A job is running (or draining) in the worker."""
        return bool(self._running)

    @property
    def capacity(self) -> int:
        """How many jobs the worker runs at once (1 until it says)."""
        status = self.worker.status_msg if self.worker is not None else None
        return status.capacity if status is not None else 1

    def get(self, req_id: str) -> Ticket | None:
        return self._tickets.get(req_id)

    def running(self) -> list[Ticket]:
        return list(self._running.values())

    def active(self) -> list[Ticket]:
        return [*self._running.values(), *self._waiting]

    def snapshot(self, visible: Callable[[Ticket], bool] = lambda _: True) -> list[dict[str, Any]]:
        """The queued and running requests in order (``position`` counts every request, shown or not)."""
        now = time.monotonic()
        rows = []
        for pos, t in enumerate(self.active()):
            if not visible(t):
                continue
            rows.append(
                {
                    "id": t.id,
                    "client_request_id": t.client_request_id,
                    "position": pos,
                    "model": t.job.model,
                    "stream": t.stream,
                    "age_s": round(now - t.created, 3),
                    "state": t.state,
                    "slot": t.slot,
                }
            )
        return rows

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _poke(self) -> None:
        task = asyncio.get_running_loop().create_task(self._notify())
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def wait_for(self, predicate: Any) -> None:
        """Wait until ``predicate(queue)`` holds (used by tests and shutdown)."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    # ---- entry and exit

    def enqueue(self, ticket: Ticket) -> None:
        if self.closed:
            raise WorkerUnavailable("The server is shutting down.", retry_after=5)
        if len(self._waiting) >= self.limit:
            raise QueueFull(f"The request queue is full ({self.limit} waiting); retry later.")
        if self.limit_per_key is not None and self._waiting.count(ticket.owner) >= self.limit_per_key:
            raise QueueFull(
                f"Too many queued requests: {self.limit_per_key} waiting for this key; retry later."
            )
        self._waiting.append(ticket)
        self._tickets[ticket.id] = ticket
        log.info("queued %s at position %d", ticket.id, len(self))
        self._poke()

    def finish(self, ticket: Ticket) -> None:
        """The handler is done with ``ticket`` (any outcome); free or drain its slot."""
        if ticket.state == "queued":
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            self._tickets.pop(ticket.id, None)
            ticket.close()
            log.info("removed %s from the queue", ticket.id)
        elif ticket.state == "running":
            if ticket.terminal.is_set():
                self._release(ticket)
            else:
                ticket.state = "draining"
                task = asyncio.get_running_loop().create_task(self._drain(ticket))
                self._drains.add(task)
                task.add_done_callback(self._drains.discard)
        self._poke()

    async def _drain(self, ticket: Ticket) -> None:
        """Stop a running generation and hold the slot until the worker confirms."""
        log.info("stopping %s in the worker (job_cancel)", ticket.id)
        try:
            await self.worker.send(protocol.JobCancel(id=ticket.id))
            async with asyncio.timeout(CANCEL_DRAIN_S):
                await ticket.terminal.wait()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("no confirmation that %s stopped (%s); moving on", ticket.id, type(exc).__name__)
        finally:
            self._release(ticket)

    def _release(self, ticket: Ticket) -> None:
        self._tickets.pop(ticket.id, None)
        if self._running.get(ticket.id) is ticket:
            del self._running[ticket.id]
        ticket.close()
        self._poke()

    def cancel(self, req_id: str, error: ServiceError) -> Ticket | None:
        """Abort a queued or running ticket; None when unknown."""
        ticket = self._tickets.get(req_id)
        if ticket is None or ticket.state == "draining":  # a "done" ticket has already left _tickets
            return None
        if ticket.state == "queued" and ticket in self._waiting:
            self._waiting.remove(ticket)
            self._poke()
        ticket.abort(error)
        return ticket

    def fail_all(self, error: ServiceError) -> int:
        """Abort every ticket (shutdown); returns how many."""
        tickets = self.active()
        for ticket in tickets:
            ticket.abort(error)
        return len(tickets)

    # ---- worker events

    def deliver(self, msg: protocol.Message) -> None:
        """Route a worker stream event to its ticket (unknown ids are dropped)."""
        req_id = getattr(msg, "id", None)
        ticket = self._tickets.get(req_id) if req_id else None
        if ticket is None:
            log.debug("dropping %s for unknown request %s", type(msg).__name__, req_id)
            return
        if isinstance(msg, protocol.Error | protocol.Done):
            ticket.terminal.set()
        elif isinstance(msg, protocol.JobAccepted) and msg.slot:
            ticket.slot = msg.slot
            self._poke()
        elif isinstance(msg, protocol.Stage):
            ticket.timings[msg.name] = msg.ms  # for the record and server-timing, not for the client
            ticket.degraded.extend(c for c in msg.degraded if c not in ticket.degraded)
            return
        ticket.inbox.put_nowait(msg)

    def status_changed(self) -> None:
        """The worker's status changed (its capacity may have): let the dispatcher look again."""
        self._poke()

    def connection_lost(self) -> None:
        """The worker connection dropped: no running job can finish."""
        for ticket in self._running.values():
            if ticket.terminal.is_set():
                continue
            ticket.terminal.set()
            ticket.abort(
                WorkerUnavailable(
                    "The connection to the browser worker was lost during generation; retry the request.",
                    code="worker_connection_lost",
                    retry_after=5,
                )
            )

    # ---- dispatcher

    def _has_room(self) -> bool:
        return bool(self._waiting) and len(self._running) < self.capacity

    async def _next(self) -> Ticket:
        async with self._changed:
            await self._changed.wait_for(self._has_room)
            return self._waiting.peek()

    async def dispatch(self) -> None:
        """Run forever: submit the next ticket when the worker is usable and has a free slot."""
        while True:
            ticket = await self._next()
            status = await self.worker.wait_usable()
            if not self._has_room() or self._waiting.peek() is not ticket:
                continue  # it left (or the queue changed) while we waited
            if status.state == "login_required":
                self._waiting.popleft()
                ticket.abort(
                    LoginRequired(
                        status.message or "The browser worker needs a Google login: run `make login`."
                    )
                )
                continue
            if status.state == "down":
                self._waiting.popleft()
                ticket.abort(
                    WorkerUnavailable(f"The browser worker is down: {status.message or 'no reason'}.")
                )
                continue
            self._waiting.popleft()
            self._running[ticket.id] = ticket
            ticket.state = "running"
            ticket.inbox.put_nowait(Started())  # before any worker event can reach the inbox
            try:
                await self.worker.send(protocol.JobSubmit(id=ticket.id, job=ticket.job))
            except ConnectionError:
                log.warning("worker connection lost before submitting %s; it waits at the head", ticket.id)
                ticket.state = "queued"
                del self._running[ticket.id]
                self._waiting.appendleft(ticket)
                await self.worker.wait_disconnected()
                continue
            self.submitted += 1
            log.info("submitted %s to the worker", ticket.id)
            await self._notify()
