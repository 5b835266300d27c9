"""``Supervisor``: the browser's life, and the pool of pages (``Slot``) it hands to jobs.

Every saved login (``auth_profiles/active/*.json``, or ``AUTH_PROFILE`` alone) is an
**account**. ``Supervisor.run`` launches the browser (``browser.py``) and keeps
``PAGES_PER_ACCOUNT`` slots per account in it (one page per account started at once, the
others when every started page is busy and a job waits, then kept warm), each its own browser
context with that account's login and its own page (``slot.py``: start-up, replacement of a broken page
without touching the others, the login wait, which takes out only that account's
pages). A login file that appears adds its account's slots; one that goes away drains
them (running jobs finish, no new one starts, then the pages close). It relaunches the
browser after a crash, with every slot, and saves each account's cookies back into its
login file every ``COOKIE_REFRESH_INTERVAL_S``.

Jobs take a slot with ``acquire(model)`` (a ready page, preferring one already on the
requested model; its ``page_lock`` held) and give it back with ``release``.

A quota, rate-limit or permission error cools its account down (``cool``, ``cooldowns.py``):
its pages take no job until then, then one page at a time until a job succeeded there, so
one burst cannot cool every account. When every account a job could use is cooling,
``acquire`` fails at once with a 429 whose ``Retry-After`` is the earliest recovery. With a
single account nothing is cooled: its errors reach each request as before. The worker's
state is the pool's: ``ready`` while a page can take a job, ``busy`` while every page is
running one, else what the slots say (``starting``, ``login_required``, ``degraded``,
``down``). Every change is reported to ``on_change`` (the worker pushes its status).

For the one-page case (and the tests) ``studio``, ``runner``, ``journal``, ``page_lock``,
``ready``, ``session`` and ``self_test`` are those of the first slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from browser_worker.accounts import account_states, plan_pages
from browser_worker.auth import profile_signature, refresh_loop, refresh_profile, session_sapisid
from browser_worker.browser import BrowserSession, SlotPage, account_profiles
from browser_worker.cooldowns import Cooldowns
from browser_worker.feed import ProxyFeed
from browser_worker.helper import HelperClient
from browser_worker.job import JobRunner
from browser_worker.mapping import models as models_mod
from browser_worker.page.studio import StudioPage
from browser_worker.slot import LOGIN_MESSAGE, LOGIN_RECHECK_S, MAX_BACKOFF_S, Slot
from browser_worker.snapshots import PageJournal
from shared import protocol
from shared.errors import (
    AllAccountsCooling,
    LoginRequired,
    ServiceError,
    WorkerUnavailable,
)
from shared.settings import Settings

log = logging.getLogger(__name__)

READY_WAIT_S = 60.0
#: How often the login files are looked at for accounts that came or went.
ACCOUNTS_POLL_S = 0.5


class Supervisor:
    """Owns the browser session and its slots; see the module docstring."""

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
        self.last_error: str | None = None
        self.relaunches = 0
        self.session: BrowserSession | None = None
        self.profile: Path | None = None
        #: The pool's pages, by account; the same objects across browser relaunches.
        self.slots: list[Slot] = []
        self.cooldowns = Cooldowns()
        #: Accounts an operator disabled (``POST /api/accounts/{name}/disable``): drained like removed ones.
        self.disabled: set[str] = set()
        self._accounts_changed = asyncio.Event()
        self._next_slot = 1
        self._plan(account_profiles(settings))
        self.closing = False
        self._browser_state: tuple[str, str] | None = ("starting", "starting the browser")
        self._free = asyncio.Condition()
        self._excluded: tuple[str, ...] = ()
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ the first slot (one-page view)

    @property
    def capacity(self) -> int:
        """How many jobs can run at once: the pages of the accounts being served, and the draining pages
        still finishing a job (at least 1). Without the latter, a job running on a draining page would
        count against the other pages and keep one of them idle while requests wait."""
        return max(1, len([s for s in self.slots if not s.draining or s.page_lock.locked()]))

    def _plan(self, profiles: list[Path]) -> None:
        plan_pages(self.slots, profiles, self.settings.pages_per_account, self._new_slot)
        for profile in profiles:  # each account keeps one page warm from the start
            first = next((s for s in self.slots if s.profile == profile and not s.draining), None)
            if first is not None:
                first.wanted.set()

    def _want_another(self, avoid: set[str]) -> None:
        """Every started page is busy and a job waits: start one more page (of an account that may serve)."""
        for slot in self.slots:
            if (
                not slot.wanted.is_set()
                and not slot.draining
                and slot.account is not None
                and slot.account not in avoid
                and not self.cooldowns.is_cooling(slot.account)
            ):
                log.info("all started pages are busy: starting %s (%s)", slot.id, slot.account)
                slot.wanted.set()
                return

    def _new_slot(self) -> Slot:
        slot = Slot(self, f"s{self._next_slot}", self._aggregate)
        self._next_slot += 1
        self.slots.append(slot)
        return slot

    def _first(self) -> Slot:
        return self.slots[0]  # there is always one (``_plan``)

    @property
    def studio(self) -> StudioPage | None:
        return self._first().studio

    @property
    def runner(self) -> JobRunner | None:
        return self._first().runner

    @property
    def journal(self) -> PageJournal | None:
        return self._first().journal

    @property
    def page(self) -> SlotPage | None:
        return self._first().page

    @property
    def self_test(self) -> dict[str, bool]:
        return self._first().self_test

    @property
    def page_lock(self) -> asyncio.Lock:
        return self._first().page_lock

    @property
    def ready(self) -> asyncio.Event:
        return self._first().ready

    @property
    def model(self) -> str | None:
        return self._first().model

    async def run_self_test(self) -> dict[str, bool]:
        return await self._first().run_self_test()

    async def reload_page(self) -> None:
        await self._first().reload_page()

    # ------------------------------------------------------------------ state

    def set_state(self, state: str, message: str = "") -> None:
        """The browser's own state (starting, down…), shown while no slot says more."""
        self._browser_state = (state, message)
        self._aggregate()

    def _aggregate(self) -> None:
        """The worker's state from the browser's and the slots'."""
        slots = [s for s in self.slots if s.state != "standby"]  # pages started (or starting)
        idle = [s for s in slots if s.state in ("ready", "degraded")]
        busy = [s for s in slots if s.state == "busy"]
        if self._browser_state is not None or not slots:
            state, message = self._browser_state or ("starting", "starting the browser")
        elif idle:
            state, message = idle[0].state, idle[0].message
        elif busy:
            state, message = "busy", "; ".join(s.message for s in busy)
        elif all(s.state == "login_required" for s in slots):
            state, message = "login_required", slots[0].message
        else:
            worst = next((s for s in slots if s.state == "down"), None) or slots[0]
            state, message = worst.state, worst.message
        if (state, message) != (self.state, self.message):
            log.info("state %s -> %s: %s", self.state, state, message)
            self.state, self.message = state, message
            self.on_change()
        self._poke()

    def _poke(self) -> None:
        task = asyncio.get_running_loop().create_task(self._notify_free())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _wait_free(self) -> None:
        """Until something changed (caller holds ``_free``), or a cooldown may have ended."""
        end = self.cooldowns.next_end()
        timeout = max(0.05, end - time.time()) if end is not None else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._free.wait()

    async def _notify_free(self) -> None:
        async with self._free:
            self._free.notify_all()

    def set_idle(self) -> None:
        """Every slot that is not running a job shows its idle state again."""
        for slot in self.slots:
            if slot.ready.is_set() and not slot.page_lock.locked():
                slot.set_idle()

    def stop_relaunching(self) -> None:
        """Shutdown: the browser and its pages are not started again once they close."""
        self.closing = True

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
        while not self.closing:
            profiles = account_profiles(self.settings)
            self.profile = profiles[0] if profiles else None
            if not profiles:
                self.set_state(
                    "login_required",
                    f"no saved login in {self.settings.auth_profiles_dir / 'active'}: run `make login`",
                )
                await self._wait_profile_change(None)
                continue
            try:
                async with BrowserSession(self.settings, open_page=False) as session:
                    self.session = session
                    self._browser_state = None
                    await self._serve(session)
                    if self.closing:
                        return
                    self.relaunches += 1
                    reason = session.lost_reason or "every login is gone"
                    self.set_state("starting", f"relaunching the browser ({reason})")
                    backoff = 1.0
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
                self.session = None
                for slot in self.slots:
                    slot.ready.clear()

    async def _serve(self, session: BrowserSession) -> None:
        """Run every account's slots in ``session`` until the browser is lost (or every login is gone),
        following the login files as they come and go."""
        tasks: dict[Slot, asyncio.Task[None]] = {}
        try:
            while not session.lost.is_set():
                found = account_profiles(self.settings)
                if not found:
                    return
                self.profile = found[0]
                self._accounts_changed.clear()
                self._plan([p for p in found if p.stem not in self.disabled])
                for slot in self.slots:
                    if slot not in tasks and not slot.draining and slot.profile is not None:
                        tasks[slot] = asyncio.create_task(slot.run(session), name=f"slot-{slot.id}")
                for slot in [s for s in self.slots if s.draining and not s.page_lock.locked()]:
                    task = tasks.pop(slot, None)
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await task
                    if len(self.slots) > 1:
                        self.slots.remove(slot)
                    else:
                        slot.draining, slot.profile = False, None
                    log.info("slot %s closed (its account is gone)", slot.id)
                    self.on_change()  # the capacity is one page less
                self._aggregate()
                signature = profile_signature(self.settings, None)
                while not session.lost.is_set() and profile_signature(self.settings, None) == signature:
                    if any(s.draining and not s.page_lock.locked() for s in self.slots):
                        break
                    if self._accounts_changed.is_set():
                        break
                    await _first_of(
                        session.lost.wait(), self._accounts_changed.wait(), asyncio.sleep(ACCOUNTS_POLL_S)
                    )
        finally:
            for task in tasks.values():
                task.cancel()
            for task in tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _wait_profile_change(self, profile: Path | None) -> None:
        """Until the profile files change, or ``LOGIN_RECHECK_S`` passes."""
        before = profile_signature(self.settings, profile)
        deadline = time.monotonic() + LOGIN_RECHECK_S
        while time.monotonic() < deadline and not self.closing:
            await asyncio.sleep(0.5)
            if profile_signature(self.settings, profile) != before:
                log.info("auth profile changed; checking the login again")
                return

    def read_models_later(self, response: Any, seen: asyncio.Event) -> None:
        """Read a ListModels response (seen by a starting page) off the event handler."""
        task = asyncio.get_running_loop().create_task(self._read_models(response, seen))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _read_models(self, response: Any, seen: asyncio.Event) -> None:
        try:
            body = await response.body()
            parsed = models_mod.parse_list_models(body, excluded=self._excluded)
        except Exception as exc:
            log.warning("could not read the model list: %s", exc)
            return
        if parsed:
            self.models = parsed
            seen.set()
            log.info("model list: %d models", len(parsed))

    # ------------------------------------------------------------------ slots, for jobs

    # ---- cooldowns (``cooldowns.py``)

    def cooling_until(self, account: str | None) -> float | None:
        return self.cooldowns.cooling_until(account)

    def cool(self, slot: Slot, error: ServiceError) -> None:
        """``error`` came from ``slot``'s account: cool the account down if the error is about it and there
        is another account to route around it (with one, each request asks AI Studio, as ever)."""
        if slot.account is None or len({s.account for s in self.slots if s.account and not s.draining}) < 2:
            return
        if self.cooldowns.cool(slot.account, error):
            self._aggregate()

    def set_enabled(self, account: str, enabled: bool) -> bool:
        """Disable an account (its pages take no new job, finish the one they run, and close) or enable it
        again; False when no login file has that name."""
        if account not in {p.stem for p in account_profiles(self.settings)}:
            return False
        if enabled:
            self.disabled.discard(account)
        else:
            self.disabled.add(account)
        log.info("account %s %s", account, "enabled" if enabled else "disabled")
        self._accounts_changed.set()
        return True

    def accounts(self) -> list[protocol.AccountStatus]:
        return account_states(account_profiles(self.settings), self.slots, self.disabled, self.cooldowns)

    def succeeded(self, slot: Slot) -> None:
        """A job succeeded on ``slot``: its account, if ramping up, serves with all its pages again."""
        if self.cooldowns.succeeded(slot.account):
            self._poke()

    def _takes_jobs(self, slot: Slot) -> bool:
        if self.cooldowns.is_cooling(slot.account):
            return False
        if slot.account in self.cooldowns.ramping:  # one page at a time until a job succeeded
            return not any(s.page_lock.locked() for s in self.slots if s.account == slot.account)
        return True

    # ---- taking a slot

    def _free_slot(self, model: str | None, avoid: set[str]) -> Slot | None:
        free = [
            s
            for s in self.slots
            if s.ready.is_set()
            and not s.page_lock.locked()
            and not s.draining
            and not s.broken
            and s.account not in avoid
            and self._takes_jobs(s)
        ]
        return next((s for s in free if s.model == model), None) or (free[0] if free else None)

    def _all_cooling(self, avoid: set[str]) -> float | None:
        """The earliest end of a cooldown when every account a job could use is cooling, else None."""
        accounts = {s.account for s in self.slots if s.account is not None and not s.draining} - avoid
        if not accounts or not all(self.cooldowns.is_cooling(a) for a in accounts):
            return None
        return min(self.cooldowns.until[a] for a in accounts)

    async def acquire(self, model: str | None = None, avoid: set[str] | None = None) -> Slot:
        """A ready slot for a job (one already on ``model`` when there is one), not of an ``avoid`` account,
        with its page lock held. ``RateLimited`` at once when every account it could use is cooling;
        ``LoginRequired`` or ``WorkerUnavailable`` when none can be had soon."""
        avoid = avoid or set()
        try:
            async with asyncio.timeout(READY_WAIT_S):
                async with self._free:
                    while True:
                        if self.state == "login_required":
                            raise LoginRequired(self.message or LOGIN_MESSAGE)
                        recovery = self._all_cooling(avoid)
                        if recovery is not None:
                            raise AllAccountsCooling(
                                "Every AI Studio account is cooling down after a quota or rate-limit error; "
                                "retry after the earliest recovery.",
                                retry_after=max(1.0, recovery - time.time()),
                            )
                        if avoid and not any(s.account not in avoid for s in self.slots if s.account):
                            raise WorkerUnavailable("no other account to run the request on")
                        slot = self._free_slot(model, avoid)
                        if slot is not None:
                            await slot.page_lock.acquire()  # free: taken at once, no other task ran
                            return slot
                        if not any(s.wanted.is_set() and not s.ready.is_set() for s in self.slots):
                            self._want_another(avoid)  # none is on its way: one more page
                        await self._wait_free()
        except TimeoutError:
            if self.state == "login_required":
                raise LoginRequired(self.message or LOGIN_MESSAGE) from None
            raise WorkerUnavailable(f"the browser is not ready: {self.message}", retry_after=30) from None

    def release(self, slot: Slot) -> None:
        if slot.page_lock.locked():
            slot.page_lock.release()
        if slot.ready.is_set() and slot.state == "busy":
            slot.set_idle()
        self._poke()

    async def wait_ready(self) -> None:
        """Until some page can take a job (tests); fails as ``acquire`` does."""
        slot = await self.acquire()
        self.release(slot)

    # ------------------------------------------------------------------ the session's cookies

    async def sapisid(self) -> str | None:
        """The session's ``SAPISID`` cookie (the stream helper's credential): from a live browser
        context, else from the saved profile."""
        context = self.page.context if self.page is not None else None
        return await session_sapisid(context, self.settings.aistudio_url, self.profile)

    async def save_cookies(self) -> None:
        """Write each account's live cookies (from one of its pages) back into its login file."""
        saved: set[Path] = set()
        for slot in self.slots:
            page, profile = slot.page, slot.profile
            if page is None or profile is None or profile in saved or page.lost.is_set() or slot.draining:
                continue
            saved.add(profile)
            refresh_profile(profile, await page.storage_state_dict())


async def _first_of(*aws: Any) -> None:
    """Until the first of ``aws`` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
