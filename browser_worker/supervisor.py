"""``Supervisor``: the browser's life, and the one page it hands to jobs.

``Supervisor.run`` launches the browser with the saved login (``browser.py``),
opens AI Studio, fixes preferences, captures the model list, turns temporary
chat on and runs the selector self-test (``start-up``); it relaunches after a
crash (with a growing back-off when start-up fails), waits while the login is
missing or expired until the profile files change, and saves the session's
cookies back into the profile every ``COOKIE_REFRESH_INTERVAL_S``.

Its public seam is what the worker (and the tests) use: ``state``/``message``
and the other status facts, ``ready``, ``page_lock`` (held by a job and by
maintenance steps), ``studio``/``runner``/``session``/``journal``/``profile``,
``wait_ready``, ``account_for`` (what a failed job's error really was),
``hand_back`` (after a job: a clean page, or a relaunch), ``snapshot``,
``run_self_test``, ``reload_page`` and ``save_cookies``. Every change of state
is reported to ``on_change`` (the worker pushes its status to its clients).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
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
from shared import protocol
from shared.errors import LoginRequired, ServiceError, WorkerUnavailable
from shared.settings import Settings
from shared.wire import endpoints

log = logging.getLogger(__name__)

LOGIN_MESSAGE = "the saved Google login is missing or expired: run `make login`"
LOGIN_RECHECK_S = 60.0
READY_WAIT_S = 60.0
MODELS_WAIT_S = 10.0
MAX_BACKOFF_S = 30.0
#: How long an error that a navigation causes waits for the navigation to reach the sign-in page.
SIGN_IN_SETTLE_S = 3.0


class Supervisor:
    """Owns the browser session, its page and the job runner on it."""

    def __init__(self, settings: Settings, *, feed: ProxyFeed | None, on_change: Callable[[], None]) -> None:
        self.settings = settings
        self.feed = feed
        self.on_change = on_change
        self.helper = (
            HelperClient(settings.helper_endpoint, self.sapisid) if settings.helper_endpoint else None
        )
        self.state = "starting"
        self.message = "starting the browser"
        self.models: list[protocol.ModelInfo] = []
        self.self_test: dict[str, bool] = {}
        self.last_error: str | None = None
        self.relaunches = 0
        self.session: BrowserSession | None = None
        self.studio: StudioPage | None = None
        self.runner: JobRunner | None = None
        self.journal: PageJournal | None = None
        self.profile: Path | None = None
        #: Set while a started page is there to be used.
        self.ready = asyncio.Event()
        #: Held while a job (including its clean-up) or a maintenance step uses the page.
        self.page_lock = asyncio.Lock()
        self._start_model: str | None = None
        self._models_seen = asyncio.Event()
        self._excluded: tuple[str, ...] = ()
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def model(self) -> str | None:
        """The model the page shows (as last verified by a job, else as found at start-up)."""
        if self.runner is not None and self.runner.current_model:
            return self.runner.current_model
        return self._start_model

    def set_state(self, state: str, message: str = "") -> None:
        if (state, message) == (self.state, self.message):
            return
        log.info("state %s -> %s: %s", self.state, state, message)
        self.state, self.message = state, message
        self.on_change()

    def set_idle(self) -> None:
        """``ready`` on the current model, or ``degraded`` while critical selectors are missing."""
        missing = [name for name, ok in self.self_test.items() if not ok]
        if missing:
            self.set_state("degraded", "selectors not found: " + ", ".join(missing))
        else:
            self.set_state("ready", f"ready on {self.model}")

    def stop_relaunching(self) -> None:
        """Shutdown: the browser is not started again once it closes."""
        self._closing = True

    # ------------------------------------------------------------------ the browser's life

    async def run(self) -> None:
        """Supervise the browser and refresh the saved cookies, until cancelled."""
        if self.helper is not None:
            log.info("stream helper at %s (capture tier 2)", self.helper.endpoint)
        self._excluded = models_mod.load_excluded_models(self.settings.excluded_models_file)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._supervise(), name="supervisor")
            tg.create_task(
                refresh_loop(self.settings.cookie_refresh_interval_s, self.save_cookies), name="cookies"
            )

    async def close(self) -> None:
        if self.helper is not None:
            await self.helper.close()

    async def _supervise(self) -> None:
        backoff = 1.0
        while not self._closing:
            profile = active_profile(self.settings)
            self.profile = profile
            if profile is None:
                self.set_state(
                    "login_required",
                    f"no saved login in {self.settings.auth_profiles_dir / 'active'}: run `make login`",
                )
                await self._wait_profile_change(None)
                continue
            try:
                async with BrowserSession(self.settings, storage_state=profile) as session:
                    self.session = session
                    await self._start_up(session)
                    backoff = 1.0
                    await session.lost.wait()
                    self.relaunches += 1
                    self.set_state("starting", f"relaunching the browser ({session.lost_reason})")
            except LoginRequired as exc:
                self.set_state("login_required", exc.message)
                self.last_error = exc.message
                await self._wait_profile_change(profile)
            except PageUnreachable as exc:
                self.set_state("starting", f"{exc.message}; retrying in {backoff:.0f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
                log.exception("browser start failed")
                self.last_error = text
                self.set_state("down", f"browser start failed: {text}; retrying in {backoff:.0f} s")
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

    async def _start_up(self, session: BrowserSession) -> None:
        assert session.page is not None
        self.set_state("starting", "opening AI Studio")
        self.journal = PageJournal()
        await self.journal.attach(session.page)
        self._models_seen.clear()
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
                await self._models_seen.wait()
        except TimeoutError:
            log.warning("no ListModels response yet; reloading once")
            await studio.reload()
            model = await studio.wait_ready()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MODELS_WAIT_S):
                    await self._models_seen.wait()
        # Responses are listened to only while starting: as long as a page has a response (or
        # request) listener, Playwright keeps every request it sends, prompts included, until the
        # page closes.
        session.page.remove_listener("response", self._on_response)
        await studio.ensure_temporary_chat()
        self.self_test = await studio.self_test()
        missing = [name for name, ok in self.self_test.items() if not ok]
        if missing:
            log.warning("selector self-test: not found: %s", ", ".join(missing))
        self._start_model = model
        self.studio = studio
        self.runner = JobRunner(
            self.settings,
            studio,
            feed=self.feed,
            models={m.id: m for m in self.models},
            function_calling_ui=self.self_test.get("function_calling", False),
            helper=self.helper,
            slot=session.slot,
        )
        self.ready.set()
        self.set_idle()

    def _on_response(self, response: Any) -> None:
        if endpoints.LIST_MODELS_FRAGMENT in response.url and response.ok:
            task = asyncio.get_running_loop().create_task(self._read_models(response))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _read_models(self, response: Any) -> None:
        try:
            body = await response.body()
            parsed = models_mod.parse_list_models(body, excluded=self._excluded)
        except Exception as exc:
            log.warning("could not read the model list: %s", exc)
            return
        if parsed:
            self.models = parsed
            self._models_seen.set()
            log.info("model list: %d models", len(parsed))

    # ------------------------------------------------------------------ the page, for jobs

    async def wait_ready(self) -> None:
        """Until the page can take a job; ``LoginRequired`` or ``WorkerUnavailable`` when it cannot soon."""
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

    async def account_for(self, error: ServiceError, runner: JobRunner) -> ServiceError:
        """What a job's error really was: the browser's crash (when the session was lost) or the
        sign-in page (when the page went there), else the error itself."""
        session = self.session
        lost = session is not None and session.lost.is_set()
        if lost or isinstance(error, BrowserGone):
            reason = session.lost_reason if lost and session is not None else "the page closed"
            error = BrowserGone.crashed(f"{reason}: {error.message}")
        if not isinstance(error, LoginRequired) and await self._went_to_sign_in(runner, error):
            error = LoginRequired(LOGIN_MESSAGE)
        return error

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

    async def hand_back(self, runner: JobRunner, error: ServiceError | None) -> None:
        """After a job: clear the page for the next one, or give the page up (the browser is
        relaunched) when it crashed, went to the sign-in page or cannot be reset."""
        session = self.session
        if session is not None and session.lost.is_set():
            self.ready.clear()
            return
        if isinstance(error, BrowserGone):
            self.page_lost(error.message)
            return
        if isinstance(error, LoginRequired) or (self.studio is not None and self.studio.is_login_url()):
            self._login_lost()
            return
        try:
            await runner.clear(finished=error is None)
        except LoginRequired:
            self._login_lost()
        except ServiceError as exc:
            log.warning("could not reset the page (%s); relaunching", exc.message)
            self.page_lost(f"page reset failed: {exc.message}")

    def _login_lost(self) -> None:
        self.set_state("login_required", LOGIN_MESSAGE)
        self.page_lost("login required")

    def page_lost(self, reason: str) -> None:
        """Stop handing out the page at once; the browser is relaunched."""
        self.ready.clear()
        if self.session is not None:
            self.session.mark_lost(reason)

    async def snapshot(self, request_id: str, error: ServiceError) -> None:
        """The failed page for diagnosis (``ERROR_SNAPSHOT_DIR``), cookie values redacted."""
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

    # ------------------------------------------------------------------ maintenance

    async def run_self_test(self) -> dict[str, bool]:
        """Check the critical selectors again; update the state and the FC fallback."""
        async with self.page_lock:
            if self.studio is None:
                raise WorkerUnavailable("no page")
            self.self_test = await self.studio.self_test()
            if self.runner is not None:
                self.runner.function_calling_ui = self.self_test.get("function_calling", False)
            if self.state != "busy":
                self.set_idle()
            return self.self_test

    async def reload_page(self) -> None:
        """Open a fresh new chat (the page re-reads its config); for recovery and tests."""
        async with self.page_lock:
            if self.studio is None:
                raise WorkerUnavailable("no page")
            await self.studio.open_new_chat()
            await self.studio.wait_ready()
            await self.studio.ensure_temporary_chat()

    async def sapisid(self) -> str | None:
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
        """Write the live session's cookies back into the profile (``AUTH_PROFILE`` when set)."""
        session, profile = self.session, self.profile
        if session is None or session.context is None or profile is None:
            return
        state = await session.storage_state_dict()
        target = self.settings.auth_profile or profile
        refresh_profile(target, state)
        log.info("cookies saved to %s", target)
