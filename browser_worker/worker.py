"""``Worker(settings)``: the browser worker process behind ``worker.sock`` (STYLE pattern 1).

The socket is served from the very start, whatever the browser is doing. A
supervisor task owns the browser: it launches it, opens AI Studio, checks the
login, fixes preferences, captures the model list, turns temporary chat on and
runs the selector self-test; it relaunches after a crash and waits (serving
status) while the login is missing. A job loop runs one job at a time.
Every state change is pushed to every connected client as ``WorkerStatus``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from browser_worker.auth import profile_signature, refresh_loop, refresh_profile, sapisid_from_profile
from browser_worker.browser import BrowserSession, active_profile
from browser_worker.errors import BrowserGone, PageUnreachable, caused_by_navigation
from browser_worker.feed import ProxyFeed
from browser_worker.helper import HelperClient
from browser_worker.job import JobRunner
from browser_worker.mapping import models as models_mod
from browser_worker.page.studio import StudioPage
from browser_worker.snapshots import PageJournal, write_snapshot
from shared import answer, protocol
from shared.errors import Cancelled, LoginRequired, ServiceError, WorkerUnavailable
from shared.logging import request_id as request_id_var
from shared.settings import VERSION, Settings
from shared.wire import endpoints

#: How long such an error waits for the navigation to reach the sign-in page.
SIGN_IN_SETTLE_S = 3.0

log = logging.getLogger(__name__)

LOGIN_MESSAGE = "the saved Google login is missing or expired: run `make login`"
LOGIN_RECHECK_S = 60.0
READY_WAIT_S = 60.0
MODELS_WAIT_S = 10.0
MAX_BACKOFF_S = 30.0
# After the job is done or cancelled, saving cookies and closing the browser get this long in all,
# so a SIGTERM ends the process within SHUTDOWN_GRACE_S + 5 s + this (a hung browser is left to die with us).
SHUTDOWN_CLEANUP_S = 15.0


@dataclass
class PendingJob:
    id: str
    job: protocol.Job
    conn: protocol.Connection
    received: float = field(default_factory=time.monotonic)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    client_gone: bool = False


class Worker:
    """Serves ``worker.sock`` and drives one AI Studio page."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state: str = "starting"
        self.message = "starting the browser"
        self.model: str | None = None
        self.models: list[protocol.ModelInfo] = []
        self.self_test: dict[str, bool] = {}
        self.last_error: str | None = None
        self.counts: collections.Counter[str] = collections.Counter()
        self.current: PendingJob | None = None
        self.clients: set[protocol.Connection] = set()
        self.queue: asyncio.Queue[PendingJob] = asyncio.Queue()
        self.feed = (
            ProxyFeed(settings.proxy_socket, max_frame=settings.max_frame_bytes, on_change=self._push_status)
            if settings.stream_port
            else None
        )
        self.helper = HelperClient(settings.helper_endpoint, self._sapisid) if settings.helper_endpoint else None
        self.session: BrowserSession | None = None
        self.studio: StudioPage | None = None
        self.runner: JobRunner | None = None
        self.journal: PageJournal | None = None
        self.profile: Path | None = None
        self.ready = asyncio.Event()
        self.models_seen = asyncio.Event()
        self._server: protocol.SocketServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        #: Held while a job (including its clean-up) or a maintenance step uses the page.
        self._page_lock = asyncio.Lock()
        self._excluded: tuple[str, ...] = ()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.helper is not None:
            log.info("stream helper at %s (capture tier 2)", self.helper.endpoint)
        self._excluded = models_mod.load_excluded_models(self.settings.excluded_models_file)
        self._server = await protocol.serve(
            self.settings.worker_socket,
            self._handle,
            max_frame=self.settings.max_frame_bytes,
            process="browser_worker",
            version=VERSION,
        )
        log.info("serving %s", self.settings.worker_socket)
        if self.feed is not None:
            await self.feed.start()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="supervisor"),
            asyncio.create_task(self._job_loop(), name="jobs"),
            asyncio.create_task(refresh_loop(self.settings.cookie_refresh_interval_s, self.save_cookies), name="cookies"),
        ]

    async def close(self) -> None:
        """Ordered shutdown: stop taking work, finish or fail the job, save cookies, close."""
        if self._closing:
            return
        self._closing = True
        log.info("shutdown: no longer accepting jobs")
        if self._server is not None:
            self._server.close()
        current = self.current
        if current is not None:
            log.info("shutdown: waiting up to %.0f s for job %s", self.settings.shutdown_grace_s, current.id)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_grace_s):
                    await self._idle.wait()
            if not self._idle.is_set():
                log.info("shutdown: cancelling job %s", current.id)
                current.cancel.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await self._idle.wait()
        while not self.queue.empty():
            pending = self.queue.get_nowait()
            await self._fail(pending, WorkerUnavailable("the worker is shutting down"), {})
        try:
            async with asyncio.timeout(SHUTDOWN_CLEANUP_S):
                await self._release()
        except TimeoutError:
            log.warning("shutdown: cleanup took over %.0f s; exiting without it", SHUTDOWN_CLEANUP_S)
        with contextlib.suppress(FileNotFoundError):
            self.settings.worker_socket.unlink()
        log.info("shutdown: done")

    async def _release(self) -> None:
        """Save cookies, stop the tasks (closing the browser), the feeds and the connections."""
        log.info("shutdown: saving cookies")
        with contextlib.suppress(Exception):
            await self.save_cookies()
        log.info("shutdown: closing the browser")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.feed is not None:
            await self.feed.close()
        if self.helper is not None:
            await self.helper.close()
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
        connected = self.feed is not None and self.feed.connected
        model = self.runner.current_model if self.runner is not None and self.runner.current_model else self.model
        return protocol.WorkerStatus(
            state=self.state,  # type: ignore[arg-type]
            message=self.message,
            model=model,
            models=self.models,
            self_test=self.self_test,
            last_error=self.last_error,
            counts=dict(self.counts),
            capture=answer.capture_label(stream=connected, helper=self.helper is not None and self.feed is None),
            proxy_connected=connected,
            current_job=self.current.id if self.current else None,
        )

    def _set_state(self, state: str, message: str = "") -> None:
        if (state, message) == (self.state, self.message):
            return
        log.info("state %s -> %s: %s", self.state, state, message)
        self.state, self.message = state, message
        self._push_status()

    def _push_status(self) -> None:
        """Send the current status to every connected client (state or capture changed)."""
        status = self.status()
        for conn in list(self.clients):
            self._spawn(self._send_quietly(conn, status))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_quietly(self, conn: protocol.Connection, msg: protocol.Message) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await conn.send(msg)

    def _idle_state(self) -> tuple[str, str]:
        missing = [name for name, ok in self.self_test.items() if not ok]
        if missing:
            return "degraded", "selectors not found: " + ", ".join(missing)
        current = self.runner.current_model if self.runner is not None and self.runner.current_model else self.model
        return "ready", f"ready on {current}"

    # ------------------------------------------------------------------ socket

    async def _handle(self, conn: protocol.Connection) -> None:
        self.clients.add(conn)
        try:
            async for msg in conn:
                if isinstance(msg, protocol.StatusRequest):
                    await conn.send(self.status())
                elif isinstance(msg, protocol.JobSubmit):
                    if self._closing:
                        await self._fail(PendingJob(msg.id, msg.job, conn), WorkerUnavailable("shutting down"), {})
                    else:
                        self.queue.put_nowait(PendingJob(msg.id, msg.job, conn))
                elif isinstance(msg, protocol.JobCancel):
                    self._cancel(msg.id)
                else:
                    log.debug("ignoring %s", getattr(msg, "type", type(msg).__name__))
                del msg  # a JobSubmit holds the whole prompt: not kept while waiting for the next message
        finally:
            self.clients.discard(conn)
            for pending in self._unfinished_jobs(conn):
                if not pending.cancel.is_set():
                    pending.client_gone = True
                    pending.cancel.set()

    def _unfinished_jobs(self, conn: protocol.Connection) -> list[PendingJob]:
        """The jobs ``conn`` sent that are queued or running. Nothing else refers to a job, so a
        finished one (its messages: the whole prompt) is freed at once, not when the API server's
        long-lived connection closes."""
        jobs = [p for p in self.queue._queue if p.conn is conn]  # type: ignore[attr-defined]
        if self.current is not None and self.current.conn is conn:
            jobs.append(self.current)
        return jobs

    def _cancel(self, job_id: str) -> None:
        if self.current is not None and self.current.id == job_id:
            log.info("cancel requested for %s", job_id)
            self.current.cancel.set()
            return
        for pending in list(self.queue._queue):  # type: ignore[attr-defined]
            if pending.id == job_id:
                pending.cancel.set()

    # ------------------------------------------------------------------ browser supervision

    async def _supervise(self) -> None:
        backoff = 1.0
        while not self._closing:
            profile = active_profile(self.settings)
            self.profile = profile
            if profile is None:
                self._set_state("login_required", f"no saved login in {self.settings.auth_profiles_dir / 'active'}: run `make login`")
                await self._wait_profile_change(None)
                continue
            try:
                async with BrowserSession(self.settings, storage_state=profile) as session:
                    self.session = session
                    await self._startup(session)
                    backoff = 1.0
                    await session.lost.wait()
                    self.counts["relaunches"] += 1
                    self._set_state("starting", f"relaunching the browser ({session.lost_reason})")
            except LoginRequired as exc:
                self._set_state("login_required", exc.message)
                self.last_error = exc.message
                await self._wait_profile_change(profile)
            except PageUnreachable as exc:
                self._set_state("starting", f"{exc.message}; retrying in {backoff:.0f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
                log.exception("browser start failed")
                self.last_error = text
                self._set_state("down", f"browser start failed: {text}; retrying in {backoff:.0f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                self.ready.clear()
                self.studio = None
                self.runner = None
                self.session = None

    async def _wait_profile_change(self, profile: Path | None) -> None:
        """Until the profile files change, or ``LOGIN_RECHECK_S`` passes."""
        before = profile_signature(self.settings, profile)
        deadline = time.monotonic() + LOGIN_RECHECK_S
        while time.monotonic() < deadline and not self._closing:
            await asyncio.sleep(0.5)
            if profile_signature(self.settings, profile) != before:
                log.info("auth profile changed; checking the login again")
                return

    def _on_response(self, response: Any) -> None:
        if endpoints.LIST_MODELS_FRAGMENT in response.url and response.ok:
            self._spawn(self._read_models(response))

    async def _read_models(self, response: Any) -> None:
        try:
            body = await response.body()
            parsed = models_mod.parse_list_models(body, excluded=self._excluded)
        except Exception as exc:
            log.warning("could not read the model list: %s", exc)
            return
        if parsed:
            self.models = parsed
            self.models_seen.set()
            log.info("model list: %d models", len(parsed))

    async def _startup(self, session: BrowserSession) -> None:
        assert session.page is not None
        self._set_state("starting", "opening AI Studio")
        self.journal = PageJournal()
        await self.journal.attach(session.page)
        self.models_seen.clear()
        session.page.on("response", self._on_response)
        studio = StudioPage(session.page, self.settings.aistudio_url)
        await studio.open_new_chat()
        model = await studio.wait_ready()
        if await studio.fix_preferences(model):
            log.info("fixed aiStudioUserPreference; reloading")
            await studio.reload()
            model = await studio.wait_ready()
        try:
            async with asyncio.timeout(MODELS_WAIT_S):
                await self.models_seen.wait()
        except TimeoutError:
            log.warning("no ListModels response yet; reloading once")
            await studio.reload()
            model = await studio.wait_ready()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MODELS_WAIT_S):
                    await self.models_seen.wait()
        # Responses are listened to only while starting: as long as a page has a response (or
        # request) listener, Playwright keeps every request it sends, prompts included, until the
        # page closes.
        session.page.remove_listener("response", self._on_response)
        await studio.ensure_temporary_chat()
        self.self_test = await studio.self_test()
        missing = [name for name, ok in self.self_test.items() if not ok]
        if missing:
            log.warning("selector self-test: not found: %s", ", ".join(missing))
        self.model = model
        self.studio = studio
        self.runner = JobRunner(
            self.settings,
            studio,
            feed=self.feed,
            models={m.id: m for m in self.models},
            function_calling_ui=self.self_test.get("function_calling", False),
            helper=self.helper,
        )
        self.ready.set()
        self._set_state(*self._idle_state())

    async def run_self_test(self) -> dict[str, bool]:
        """Check the critical selectors again; update the state and the FC fallback."""
        async with self._page_lock:
            if self.studio is None:
                raise WorkerUnavailable("no page")
            self.self_test = await self.studio.self_test()
            if self.runner is not None:
                self.runner.function_calling_ui = self.self_test.get("function_calling", False)
            if self.current is None:
                self._set_state(*self._idle_state())
            return self.self_test

    async def reload_page(self) -> None:
        """Open a fresh new chat (the page re-reads its config); for recovery and tests."""
        async with self._page_lock:
            if self.studio is None:
                raise WorkerUnavailable("no page")
            await self.studio.open_new_chat()
            await self.studio.wait_ready()
            await self.studio.ensure_temporary_chat()

    async def _sapisid(self) -> str | None:
        """The session's ``SAPISID`` cookie (the stream helper's credential): from the live
        browser context, else from the saved profile."""
        session = self.session
        if session is not None and session.context is not None:
            with contextlib.suppress(Exception):
                for cookie in await session.context.cookies(self.settings.aistudio_url):
                    if cookie.get("name") == "SAPISID":
                        return cookie.get("value")
        profile = self.profile
        if profile is not None:
            return sapisid_from_profile(profile)
        return None

    async def save_cookies(self) -> None:
        session, profile = self.session, self.profile
        if session is None or session.context is None or profile is None:
            return
        state = await session.storage_state_dict()
        target = self.settings.auth_profile or profile
        refresh_profile(target, state)
        log.info("cookies saved to %s", target)

    # ------------------------------------------------------------------ jobs

    async def _job_loop(self) -> None:
        while True:
            # No local of the loop refers to the job: the last one (its prompt) is not kept while
            # the loop waits for the next.
            await self._take_job(await self.queue.get())

    async def _take_job(self, pending: PendingJob) -> None:
        if pending.cancel.is_set():
            await self._fail(pending, Cancelled("the request was cancelled before it started"), {})
            return
        token = request_id_var.set(pending.id)
        try:
            await self._run_job(pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s crashed the job loop", pending.id)
        finally:
            request_id_var.reset(token)

    async def _emit_to(self, pending: PendingJob, msg: protocol.Message) -> None:
        if pending.client_gone:
            return
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

    @staticmethod
    async def _went_to_sign_in(runner: JobRunner, error: ServiceError) -> bool:
        """The page is on (or on its way to) Google's sign-in page: that navigation, not the error it caused,
        is what the client must hear. An error that a navigation causes (the page's scripts lose their
        context) can come before the navigation commits, so such an error waits for it a moment."""
        if runner.studio.is_login_url():
            return True
        if not caused_by_navigation(error):
            return False
        try:
            async with asyncio.timeout(SIGN_IN_SETTLE_S):
                await runner.studio.wait_for_login_redirect()
        except (TimeoutError, ServiceError):
            return False
        return True

    async def _wait_ready(self) -> None:
        if self.state == "login_required":
            raise LoginRequired(self.message or LOGIN_MESSAGE)
        if self.session is not None and self.session.lost.is_set():
            self.ready.clear()
        try:
            async with asyncio.timeout(READY_WAIT_S):
                await self.ready.wait()
        except TimeoutError:
            if self.state == "login_required":
                raise LoginRequired(self.message or LOGIN_MESSAGE) from None
            raise WorkerUnavailable(f"the browser is not ready: {self.message}", retry_after=30) from None

    async def _run_job(self, pending: PendingJob) -> None:
        timings: dict[str, float] = {}
        self.current = pending
        self._idle.clear()
        try:
            try:
                await self._wait_ready()
            except ServiceError as exc:
                self.counts["failed"] += 1
                await self._fail(pending, exc, timings)
                return
            async with self._page_lock:
                await self._run_locked(pending, timings)
        finally:
            self.current = None
            self._idle.set()
            if self.ready.is_set() and self.state == "busy":
                self._set_state(*self._idle_state())

    async def _run_locked(self, pending: PendingJob, timings: dict[str, float]) -> None:
        """Run one job on the page and leave it clean; the caller holds the page lock."""
        runner = self.runner
        if runner is None:  # the page went away while we waited for the lock
            await self._fail(pending, BrowserGone.crashed("the page went away before the job started"), timings)
            return
        timings["accepted"] = _ms(pending.received)
        await self._emit_to(pending, protocol.JobAccepted(id=pending.id, ts=time.time()))
        self._set_state("busy", f"running {pending.id}")
        log.info("job %s: model %s, %d messages", pending.id, pending.job.model, len(pending.job.messages))
        start = time.monotonic()
        outcome = await runner.run(
            pending.id, pending.job, lambda m: self._emit_to(pending, m), pending.cancel, timings
        )
        if outcome.retried:
            self.counts["retried"] += 1
        error = outcome.error
        session = self.session
        lost = session is not None and session.lost.is_set()
        if error is not None and (lost or isinstance(error, BrowserGone)):
            reason = session.lost_reason if lost and session is not None else "the page closed"
            error = BrowserGone.crashed(f"{reason}: {error.message}")
        if error is not None and not isinstance(error, LoginRequired) and await self._went_to_sign_in(runner, error):
            error = LoginRequired(LOGIN_MESSAGE)
        if error is not None and isinstance(error, Cancelled):
            with contextlib.suppress(Exception):
                await runner.studio.stop_generation()
                timings["stopped"] = _ms(pending.received)
        timings["total"] = (time.monotonic() - start) * 1000 + timings["accepted"]
        if error is None:
            self.counts["completed"] += 1
            await self._send_done(pending, timings, "ok")
        else:
            self.counts["cancelled" if isinstance(error, Cancelled) else "failed"] += 1
            self.last_error = f"{error.kind}: {error.message}"
            log.warning("job %s failed: %s", pending.id, self.last_error)
            if not isinstance(error, Cancelled):
                await self._snapshot(pending.id, error)
            await self._fail(pending, error, timings)
        await self._clean_up(runner, error)

    async def _snapshot(self, request_id: str, error: ServiceError) -> None:
        secrets: list[str] = []
        if self.session is not None and self.session.context is not None:
            with contextlib.suppress(Exception):
                secrets = [c["value"] for c in await self.session.context.cookies()]
        await write_snapshot(
            self.settings.error_snapshot_dir,
            self.settings.max_error_snapshots,
            request_id,
            error.kind,
            message=error.message,
            studio=self.studio,
            journal=self.journal,
            secrets=secrets,
        )

    def _page_lost(self, reason: str) -> None:
        """Stop handing out the page at once; the supervisor relaunches the browser."""
        self.ready.clear()
        if self.session is not None:
            self.session.mark_lost(reason)

    async def _clean_up(self, runner: JobRunner, error: ServiceError | None) -> None:
        session = self.session
        if session is not None and session.lost.is_set():
            self.ready.clear()
            return
        if isinstance(error, BrowserGone):
            self._page_lost(error.message)
            return
        if isinstance(error, LoginRequired) or (self.studio is not None and self.studio.is_login_url()):
            self._set_state("login_required", LOGIN_MESSAGE)
            self._page_lost("login required")
            return
        try:
            await runner.clear(finished=error is None)
        except LoginRequired:
            self._set_state("login_required", LOGIN_MESSAGE)
            self._page_lost("login required")
        except ServiceError as exc:
            log.warning("could not reset the page (%s); relaunching", exc.message)
            self._page_lost(f"page reset failed: {exc.message}")


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)
