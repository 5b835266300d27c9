"""``Worker(settings)``: the browser worker process behind ``worker.sock`` (STYLE pattern 1).

The socket is served from the very start, whatever the browser is doing. The
``Supervisor`` (``supervisor.py``) owns the browser's life and its pool of pages
(``slot.py``): launch, start-up, replacement after a crash, the login wait and
the cookie refresh. The worker owns the socket and the job queue: a job loop
takes each job in order, waits for a free page (one already on the job's model
when there is one) and runs the job there (``job/``) while the next job waits
for another page; it reports each outcome and hands the page back. Every state
change is pushed to every connected client as ``WorkerStatus`` (``capacity``:
how many pages, so how many jobs the API may send at once).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

from browser_worker import selector_control
from browser_worker.errors import BrowserGone
from browser_worker.feed import ProxyFeed
from browser_worker.job_queue import JobQueue, PendingJob
from browser_worker.remote_login import LOGIN_MESSAGES, RemoteLogins
from browser_worker.slot import Slot
from browser_worker.supervisor import Supervisor
from shared import answer, channel, protocol
from shared.errors import (
    Cancelled,
    LoginRequired,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServiceError,
    WorkerUnavailable,
)
from shared.logging import request_id as request_id_var
from shared.settings import VERSION, Settings

log = logging.getLogger(__name__)

# After the job is done or cancelled, saving cookies and closing the browser get this long in all,
# so a SIGTERM ends the process within SHUTDOWN_GRACE_S + 5 s + this (a hung browser is left to die with us).
SHUTDOWN_CLEANUP_S = 15.0
#: Errors of one account or page that another account's page may not have: such a job, failing before any
#: output, runs again on another account.
FAIL_OVER = (QuotaExceeded, RateLimited, PermissionDenied, LoginRequired, BrowserGone)
#: The events that are part of the answer the client sees.
OUTPUT = (protocol.Reasoning, protocol.Content, protocol.ToolCall, protocol.Grounding)


class Worker:
    """Serves ``worker.sock`` and runs the jobs it receives on the supervisor's page."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.feed = (
            ProxyFeed(settings.proxy_socket, max_frame=settings.max_frame_bytes, on_change=self._push_status)
            if settings.stream_port
            else None
        )
        self.supervisor = Supervisor(settings, feed=self.feed, on_change=self._push_status)
        self.logins = RemoteLogins(settings, lambda: self.supervisor.session)
        self.counts: collections.Counter[str] = collections.Counter()
        #: The jobs running now, by id (one per busy page).
        self.running: dict[str, PendingJob] = {}
        self.clients: set[channel.Connection] = set()
        self.queue = JobQueue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: channel.SocketServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()
        self._jobs: set[asyncio.Task[None]] = set()

    @property
    def current(self) -> PendingJob | None:
        """The oldest running job (the one job, with one page)."""
        return next(iter(self.running.values()), None)

    async def wait_idle(self) -> None:
        """Until no job runs (the last one's clean-up included)."""
        await self._idle.wait()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._server = await channel.serve(
            self.settings.worker_socket,
            self._handle,
            max_frame=self.settings.max_frame_bytes,
            process="browser_worker",
            version=VERSION,
        )
        log.info("serving %s", self.settings.worker_socket)
        selector_control.load_at_start(self.settings)
        if self.feed is not None:
            await self.feed.start()
        self._tasks = [
            asyncio.create_task(self.supervisor.run(), name="supervisor"),
            asyncio.create_task(self._job_loop(), name="jobs"),
        ]

    async def close(self) -> None:
        """Ordered shutdown: stop taking work, finish or fail the job, save cookies, close."""
        if self._closing:
            return
        self._closing = True
        self.supervisor.stop_relaunching()
        log.info("shutdown: no longer accepting jobs")
        if self._server is not None:
            self._server.close()
        await self._let_the_job_end()
        for pending in self.queue.take_all():
            await self._fail(pending, WorkerUnavailable("the worker is shutting down"), {})
        try:
            async with asyncio.timeout(SHUTDOWN_CLEANUP_S):
                await self._release()
        except TimeoutError:
            log.warning("shutdown: cleanup took over %.0f s; exiting without it", SHUTDOWN_CLEANUP_S)
        with contextlib.suppress(FileNotFoundError):
            self.settings.worker_socket.unlink()
        log.info("shutdown: done")

    async def _let_the_job_end(self) -> None:
        """The running jobs get ``SHUTDOWN_GRACE_S`` to finish, then they are cancelled."""
        if not self.running:
            return
        names = ", ".join(self.running)
        log.info("shutdown: waiting up to %.0f s for job %s", self.settings.shutdown_grace_s, names)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.shutdown_grace_s):
                await self._idle.wait()
        if not self._idle.is_set():
            for pending in list(self.running.values()):
                log.info("shutdown: cancelling job %s", pending.id)
                pending.cancel.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._idle.wait()

    async def _release(self) -> None:
        """Save cookies, stop the tasks (closing the browser), the feeds and the connections."""
        log.info("shutdown: saving cookies")
        with contextlib.suppress(Exception):
            await self.supervisor.save_cookies()
        log.info("shutdown: closing the browser")
        for task in [*self._jobs, *self._tasks]:
            task.cancel()
        for task in [*self._jobs, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.feed is not None:
            await self.feed.close()
        await self.supervisor.close()
        for conn in list(self.clients):
            await conn.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ status

    def status(self) -> protocol.WorkerStatus:
        sup = self.supervisor
        connected = self.feed is not None and self.feed.connected
        counts = dict(self.counts) | (self.feed.counts if self.feed is not None else {})
        if sup.relaunches:
            counts["relaunches"] = sup.relaunches
        return protocol.WorkerStatus(
            state=sup.state,  # type: ignore[arg-type]
            message=sup.message,
            model=sup.model,
            models=sup.models,
            self_test=sup.self_test,
            last_error=sup.last_error,
            counts=counts,
            capture=answer.capture_label(
                stream=connected, helper=sup.helper is not None and self.feed is None
            ),
            proxy_connected=connected,
            current_job=self.current.id if self.current else None,
            capacity=sup.capacity,
            slots=[
                protocol.SlotStatus(
                    id=s.id,
                    state=(
                        "draining" if s.draining else "cooling" if sup.cooling_until(s.account) else s.state
                    ),
                    message=s.message,
                    account=s.account,
                    model=s.model,
                    job=s.job,
                    cooling_until=sup.cooling_until(s.account),
                )
                for s in sup.slots
            ],
            accounts=sup.accounts(),
            selectors=selector_control.info(self.settings),
        )

    def _push_status(self) -> None:
        """Send the current status to every connected client (state or capture changed)."""
        status = self.status()
        for conn in list(self.clients):
            task = asyncio.get_running_loop().create_task(self._send_quietly(conn, status))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _send_quietly(self, conn: channel.Connection, msg: protocol.Message) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await conn.send(msg)

    # ------------------------------------------------------------------ socket

    async def _handle(self, conn: channel.Connection) -> None:
        self.clients.add(conn)
        try:
            async for msg in conn:
                if isinstance(msg, protocol.StatusRequest):
                    await conn.send(self.status())
                elif isinstance(msg, protocol.JobSubmit):
                    if self._closing:
                        await self._fail(
                            PendingJob(msg.id, msg.job, conn), WorkerUnavailable("shutting down"), {}
                        )
                    else:
                        self.queue.put(PendingJob(msg.id, msg.job, conn))
                elif isinstance(msg, protocol.JobCancel):
                    self._cancel(msg.id)
                elif isinstance(msg, LOGIN_MESSAGES):
                    await self.logins.handle(msg, conn.send)
                elif isinstance(msg, protocol.SelectorsReload):
                    await conn.send(
                        await selector_control.reload_pages(self.settings, self.supervisor.slots, msg.id)
                    )
                elif isinstance(msg, protocol.AccountAction):
                    if self.supervisor.set_enabled(msg.account, msg.action == "enable"):
                        self._push_status()
                    else:
                        await conn.send(self.status())
                else:
                    log.debug("ignoring %s", getattr(msg, "type", type(msg).__name__))
                del msg  # a JobSubmit holds the whole prompt: not kept while waiting for the next message
        finally:
            self.clients.discard(conn)
            for pending in self._unfinished_jobs(conn):
                if not pending.cancel.is_set():
                    pending.client_gone = True
                    pending.cancel.set()

    def _unfinished_jobs(self, conn: channel.Connection) -> list[PendingJob]:
        """The jobs ``conn`` sent that are queued or running. Nothing else refers to a job, so a
        finished one (its messages: the whole prompt) is freed at once, not when the API server's
        long-lived connection closes."""
        jobs = [p for p in self.queue if p.conn is conn]
        jobs += [p for p in self.running.values() if p.conn is conn]
        return jobs

    def _cancel(self, job_id: str) -> None:
        running = self.running.get(job_id)
        if running is not None:
            log.info("cancel requested for %s", job_id)
            running.cancel.set()
            return
        for pending in self.queue:
            if pending.id == job_id:
                pending.cancel.set()

    # ------------------------------------------------------------------ jobs

    async def _job_loop(self) -> None:
        """Take the jobs in order; each runs on its own page while the next one waits for another."""
        while True:
            # No local of the loop refers to the job: the last one (its prompt) is not kept while
            # the loop waits for the next.
            await self._take_job(await self.queue.get())

    async def _take_job(self, pending: PendingJob) -> None:
        if pending.cancel.is_set():
            await self._fail(pending, Cancelled("the request was cancelled before it started"), {})
            return
        self.running[pending.id] = pending
        self._idle.clear()
        try:
            slot = await self._acquire(pending)
        except BaseException:
            self._finished(pending)
            raise
        if slot is None:
            self._finished(pending)
            return
        task = asyncio.create_task(self._run_on(slot, pending), name=f"job-{pending.id}")
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _acquire(self, pending: PendingJob) -> Slot | None:
        """A page for ``pending`` (None when it failed or was cancelled meanwhile: answered already)."""
        timings: dict[str, float] = {}
        waiting = asyncio.ensure_future(self.supervisor.acquire(pending.job.model))
        cancelled = asyncio.ensure_future(pending.cancel.wait())
        try:
            await asyncio.wait({waiting, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if not waiting.done():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError, ServiceError):
                slot = await waiting
                self.supervisor.release(slot)  # it was granted as the cancel came
            await self._fail(pending, Cancelled("the request was cancelled before it started"), timings)
            return None
        try:
            return waiting.result()
        except ServiceError as exc:
            self.counts["failed"] += 1
            await self._fail(pending, exc, timings)
            return None

    def _finished(self, pending: PendingJob) -> None:
        self.running.pop(pending.id, None)
        if not self.running:
            self._idle.set()

    async def _run_on(self, slot: Slot, pending: PendingJob) -> None:
        """Run ``pending`` on ``slot``; when it fails before any output with an error another account could
        avoid (quota, rate limit, permission, login, a crashed page), run it again on another account."""
        token = request_id_var.set(pending.id)
        tried: set[str] = set()
        timings: dict[str, float] = {}
        try:
            while True:
                slot.job = pending.id
                try:
                    error = await self._attempt(slot, pending, timings)
                finally:
                    slot.job = None
                if error is None or not self._may_fail_over(pending, error):
                    await self._report(slot, pending, error, timings)
                    await self._hand_back(slot, error)
                    return
                tried.add(slot.account or "")
                await self._hand_back(slot, error)
                try:
                    slot = await self.supervisor.acquire(pending.job.model, avoid=tried)
                except ServiceError as other:
                    final = other if isinstance(other, RateLimited) else error
                    await self._report(None, pending, final, timings)
                    return
                self.counts["failed_over"] += 1
                log.warning(
                    "job %s: %s; running it again on account %s", pending.id, error.kind, slot.account
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s crashed", pending.id)
        finally:
            request_id_var.reset(token)
            self._finished(pending)

    def _may_fail_over(self, pending: PendingJob, error: ServiceError) -> bool:
        return (
            isinstance(error, FAIL_OVER)
            and not pending.output_sent
            and not pending.cancel.is_set()
            and len({s.account for s in self.supervisor.slots if s.account}) > 1
        )

    async def _hand_back(self, slot: Slot, error: ServiceError | None) -> None:
        """The page back to the pool: the account cools down after its quota errors, ramps up after a
        success, and the page is cleared (or replaced)."""
        try:
            if error is None:
                self.supervisor.succeeded(slot)
            elif error is not None:
                self.supervisor.cool(slot, error)
            if slot.runner is not None:
                await slot.hand_back(slot.runner, error)
        finally:
            self.supervisor.release(slot)

    async def _emit_to(self, pending: PendingJob, msg: protocol.Message) -> None:
        if pending.client_gone:
            return
        if isinstance(msg, OUTPUT):
            pending.output_sent = True
        try:
            await pending.conn.send(msg)
        except (ConnectionError, OSError):
            log.info("client left during job %s; cancelling", pending.id)
            pending.client_gone = True
            pending.cancel.set()

    async def _fail(self, pending: PendingJob, error: ServiceError, timings: dict[str, float]) -> None:
        await self._emit_to(
            pending,
            protocol.Error(
                id=pending.id,
                ts=time.time(),
                kind=error.kind,
                message=error.message,
                status=error.status,
                retry_after=error.retry_after,
                param=error.param,
            ),
        )
        timings.setdefault("total", _ms(pending.received))
        await self._send_done(pending, timings, error.kind)

    async def _send_done(self, pending: PendingJob, timings: dict[str, float], outcome: str) -> None:
        """``Done`` with the job's timings, and the same timings as one INFO line for the log."""
        log.info(
            "job %s done (%s): %s",
            pending.id,
            outcome,
            ", ".join(f"{name} {value:.1f} ms" for name, value in timings.items()) or "no timings",
        )
        await self._emit_to(pending, protocol.Done(id=pending.id, ts=time.time(), timings=timings))

    async def _attempt(
        self, slot: Slot, pending: PendingJob, timings: dict[str, float]
    ) -> ServiceError | None:
        """Run the job once on the slot's page (the caller holds the slot's page lock); its error, if any."""
        runner = slot.runner
        if runner is None:  # the page went away while we waited for the lock
            return BrowserGone.crashed("the page went away before the job started")
        timings["accepted"] = _ms(pending.received)
        await self._emit_to(pending, protocol.JobAccepted(id=pending.id, ts=time.time(), slot=slot.id))
        slot.set_state("busy", f"running {pending.id}")
        log.info(
            "job %s: model %s, %d messages, on %s (%s)",
            pending.id,
            pending.job.model,
            len(pending.job.messages),
            slot.id,
            slot.account,
        )
        start = time.monotonic()
        outcome = await runner.run(
            pending.id, pending.job, lambda m: self._emit_to(pending, m), pending.cancel, timings
        )
        if outcome.retried:
            self.counts["retried"] += 1
        error = outcome.error
        if error is not None:
            error = await slot.account_for(error, runner)
        if isinstance(error, Cancelled):
            with contextlib.suppress(Exception):
                await runner.studio.stop_generation()
                timings["stopped"] = _ms(pending.received)
        timings["total"] = (time.monotonic() - start) * 1000 + timings["accepted"]
        return error

    async def _report(
        self, slot: Slot | None, pending: PendingJob, error: ServiceError | None, timings: dict[str, float]
    ) -> None:
        """Count the outcome and tell the client: ``Done``, or ``Error`` then ``Done`` (a failed page is
        snapshotted first, a cancelled one is not)."""
        if error is None:
            self.counts["completed"] += 1
            await self._send_done(pending, timings, "ok")
            return
        self.counts["cancelled" if isinstance(error, Cancelled) else "failed"] += 1
        self.supervisor.last_error = f"{error.kind}: {error.message}"
        log.warning("job %s failed: %s", pending.id, self.supervisor.last_error)
        if not isinstance(error, Cancelled) and slot is not None:
            await slot.snapshot(pending.id, error)
        await self._fail(pending, error, timings)


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)
