"""``Slot``: one page of the pool, in its own browser context, that runs one job at a time.

A slot's life (``Slot.run``, a task of the supervisor): open its context and page in the
shared browser (``BrowserSession.open_slot``, named to the stream proxy by its slot id),
open AI Studio, fix the preferences, wait for the model list, turn temporary chat on and
run the selector self-test (``start-up``); then serve jobs until the page is lost, and
replace it — only this slot's page, the others keep serving. A start-up that fails backs
off; a missing or expired login waits until the login file changes.

Its seam for the worker: ``state``/``message``, ``ready``, ``page_lock`` (held by a job
and by maintenance steps), ``studio``/``runner``/``page``/``journal``, ``account_for``
(what a failed job's error really was), ``hand_back`` (a clean page, or a replacement),
``snapshot``, ``run_self_test`` and ``reload_page``. Every change is reported to
``on_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from browser_worker import diagnosis, selector_control
from browser_worker import selectors as S
from browser_worker.auth import profile_signature
from browser_worker.browser import BrowserSession, SlotPage
from browser_worker.errors import BrowserGone, PageUnreachable, caused_by_navigation
from browser_worker.job import JobRunner
from browser_worker.page.studio import StudioPage
from browser_worker.snapshots import PageJournal, write_snapshot
from shared.errors import LoginRequired, ServiceError, WorkerUnavailable
from shared.wire import endpoints

if TYPE_CHECKING:
    from browser_worker.supervisor import Supervisor

log = logging.getLogger(__name__)

LOGIN_MESSAGE = "the saved Google login is missing or expired: run `make login`"
LOGIN_RECHECK_S = 60.0
MODELS_WAIT_S = 10.0
MAX_BACKOFF_S = 30.0
#: How long an error that a navigation causes waits for the navigation to reach the sign-in page.
SIGN_IN_SETTLE_S = 3.0


class Slot:
    """One page of the pool; see the module docstring."""

    @property
    def account(self) -> str | None:
        """The account's name: its login file's name without ``.json``."""
        return self.profile.stem if self.profile is not None else None

    def __init__(self, sup: Supervisor, slot_id: str, on_change: Callable[[], None]) -> None:
        self.sup = sup
        self.settings = sup.settings
        self.id = slot_id
        #: The saved login (account) this slot's context starts from.
        self.profile: Path | None = None
        #: Its account was removed: it takes no new job and closes once its job is done.
        self.draining = False
        #: Its page is started once wanted (an account's first page at once, the others when every started
        #: page is busy and a job waits) and then kept warm.
        self.wanted = asyncio.Event()
        self.on_change = on_change
        self.state = "standby"
        self.message = "starts when a request needs it"
        self.self_test: dict[str, bool] = {}
        self.page: SlotPage | None = None
        self.studio: StudioPage | None = None
        self.runner: JobRunner | None = None
        self.journal: PageJournal | None = None
        #: Set while a started page is there to be used.
        self.ready = asyncio.Event()
        #: Held while a job (including its clean-up) or a maintenance step uses the page.
        self.page_lock = asyncio.Lock()
        self.replacements = 0
        #: The request running on this page now.
        self.job: str | None = None
        self._start_model: str | None = None

    @property
    def model(self) -> str | None:
        """The model the page shows (as last verified by a job, else as found at start-up)."""
        if self.runner is not None and self.runner.current_model:
            return self.runner.current_model
        return self._start_model

    def set_state(self, state: str, message: str = "") -> None:
        if (state, message) == (self.state, self.message):
            return
        log.info("slot %s: %s -> %s: %s", self.id, self.state, state, message)
        self.state, self.message = state, message
        self.on_change()

    @property
    def broken(self) -> list[str]:
        """The self-test's essential checks that fail (``S.ESSENTIAL``): no request can run on the page."""
        return [name for name in S.ESSENTIAL if self.self_test.get(name) is False]

    def set_idle(self) -> None:
        """``ready`` on the current model, ``degraded`` while secondary controls are missing, ``down`` (out of
        service, with the diagnosis) while an essential one is."""
        missing = [name for name, ok in self.self_test.items() if not ok]
        if self.broken:
            self.set_state("down", diagnosis.out_of_service(self.broken))
        elif missing:
            self.set_state("degraded", diagnosis.degraded(missing))
        else:
            self.set_state("ready", f"ready on {self.model}")

    # ------------------------------------------------------------------ the page's life

    async def run(self, session: BrowserSession) -> None:
        """Once wanted, keep a started page in this slot until cancelled (or the browser goes)."""
        await self.wanted.wait()
        backoff = 1.0
        while not self.sup.closing:
            try:
                page = await session.open_slot(self.id, self.profile)
                try:
                    self.page = page
                    await self._start_up(page)
                    backoff = 1.0
                    await page.lost.wait()
                    self.replacements += 1
                    self.set_state("starting", f"replacing the page ({page.lost_reason})")
                finally:
                    self.ready.clear()
                    self.studio = None
                    self.runner = None
                    self.page = None
                    await page.close()
            except LoginRequired as exc:
                self.set_state("login_required", exc.message)
                self.sup.last_error = exc.message
                await self._wait_profile_change()
            except PageUnreachable as exc:
                self.set_state("starting", f"{exc.message}; retrying in {backoff:.0f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if session.lost.is_set():
                    return  # the browser went: the supervisor relaunches it with every slot
                text = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
                log.exception("slot %s: page start failed", self.id)
                self.sup.last_error = text
                self.set_state("down", f"page start failed: {text}; retrying in {backoff:.0f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _wait_profile_change(self) -> None:
        """Until the login file changes, or ``LOGIN_RECHECK_S`` passes."""
        before = profile_signature(self.settings, self.profile)
        deadline = time.monotonic() + LOGIN_RECHECK_S
        while time.monotonic() < deadline and not self.sup.closing:
            await asyncio.sleep(0.5)
            if profile_signature(self.settings, self.profile) != before:
                log.info("auth profile changed; checking the login again")
                return

    async def _start_up(self, page: SlotPage) -> None:
        self.set_state("starting", "opening AI Studio")
        self.journal = PageJournal()
        await self.journal.attach(page.page)
        models_seen = asyncio.Event()

        def on_response(response: Any) -> None:
            if endpoints.LIST_MODELS_FRAGMENT in response.url and response.ok:
                self.sup.read_models_later(response, models_seen)

        page.page.on("response", on_response)
        # before any locator is built: a start-up override that does not parse must not reach the page wing
        await selector_control.check_pending(page.page)
        studio = StudioPage(page.page, self.settings.aistudio_url)
        await studio.open_new_chat()
        model = await studio.wait_ready()
        if await studio.fix_preferences(model):
            log.info("fixed aiStudioUserPreference; reloading")
            await studio.reload()
            model = await studio.wait_ready()
        if not self.sup.models:
            try:
                async with asyncio.timeout(MODELS_WAIT_S):
                    await models_seen.wait()
            except TimeoutError:
                log.warning("no ListModels response yet; reloading once")
                await studio.reload()
                model = await studio.wait_ready()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(MODELS_WAIT_S):
                        await models_seen.wait()
        # Responses are listened to only while starting: as long as a page has a response (or
        # request) listener, Playwright keeps every request it sends, prompts included, until the
        # page closes.
        page.page.remove_listener("response", on_response)
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
            feed=self.sup.feed,
            models={m.id: m for m in self.sup.models},
            function_calling_ui=self.self_test.get("function_calling", False),
            helper=self.sup.helper,
            slot=self.id,
        )
        self.ready.set()
        self.set_idle()

    # ------------------------------------------------------------------ after a job

    async def account_for(self, error: ServiceError, runner: JobRunner) -> ServiceError:
        """What a job's error really was: the page's or browser's crash (when it was lost) or the sign-in
        page (when the page went there), else the error itself."""
        page = self.page
        lost = page is not None and page.lost.is_set()
        if lost or isinstance(error, BrowserGone):
            reason = page.lost_reason if lost and page is not None else "the page closed"
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
        """After a job: clear the page for the next one, or give the page up (it is replaced) when it
        crashed, went to the sign-in page or cannot be reset."""
        page = self.page
        if page is None or page.lost.is_set():
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
            log.warning("could not reset the page (%s); replacing it", exc.message)
            self.page_lost(f"page reset failed: {exc.message}")

    def _login_lost(self) -> None:
        self.set_state("login_required", LOGIN_MESSAGE)
        self.page_lost("login required")

    def page_lost(self, reason: str) -> None:
        """Stop handing out the page at once; it is replaced."""
        self.ready.clear()
        if self.page is not None:
            self.page.mark_lost(reason)

    async def snapshot(self, request_id: str, error: ServiceError) -> None:
        """The failed page for diagnosis (``ERROR_SNAPSHOT_DIR``), cookie values redacted."""
        secrets: list[str] = []
        if self.page is not None:
            with contextlib.suppress(Exception):
                secrets = [c["value"] for c in await self.page.context.cookies()]
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
        self.on_change()  # the page is free again: wake a job that waited for it (see ``refresh_selectors``)
        return self.self_test

    async def refresh_selectors(self) -> None:
        """After a selector override: the page's regions are built again from the selectors as they are now
        (they hold locators), and the self-test runs again (a page out of service may serve again)."""
        async with self.page_lock:
            if self.page is None or self.studio is None:
                return
            self.studio = StudioPage(self.page.page, self.settings.aistudio_url)
            if self.runner is not None:
                self.runner.studio = self.studio
                self.runner.function_calling_ui = False
            self.self_test = await self.studio.self_test()
            if self.runner is not None:
                self.runner.function_calling_ui = self.self_test.get("function_calling", False)
            if not self.broken:
                await self.studio.ensure_temporary_chat()  # it may have failed under a dialog no one knew
            self.set_idle()
        # The page is free again: a job that waited for it meanwhile takes it now (``set_idle`` says nothing
        # when the state did not change, and then no one would wake it before its wait ran out).
        self.on_change()

    async def reload_page(self) -> None:
        """Open a fresh new chat (the page re-reads its config); for recovery and tests."""
        async with self.page_lock:
            if self.studio is None:
                raise WorkerUnavailable("no page")
            await self.studio.open_new_chat()
            await self.studio.wait_ready()
            await self.studio.ensure_temporary_chat()
        self.on_change()  # the page is free again: wake a job that waited for it
