"""The document: loading and reloading the chat, readiness, the login redirect and the preferences
in localStorage (docs/aistudio.md §1.1, §1.3, §7)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker import selectors as S
from browser_worker.errors import BrowserGone, PageBroken
from browser_worker.page import scripts
from browser_worker.page.translate import translated
from shared.errors import LoginRequired


class Navigation:
    """Where the page is and whether it is ready: ``/prompts/new_chat`` loaded, or the sign-in host."""

    def __init__(self, page: Page, base_url: str, textarea: Locator) -> None:
        self.page = page
        self.new_chat_url = base_url.rstrip("/") + S.NEW_CHAT_PATH
        self.textarea = textarea
        self.model_name = page.locator(S.MODEL_NAME).first

    def is_login_url(self) -> bool:
        return S.LOGIN_HOST in self.page.url

    def check_login(self) -> None:
        """Raise ``LoginRequired`` when the page was sent to the sign-in host."""
        if self.is_login_url():
            raise LoginRequired("the saved Google login is missing or expired: run `make login`")

    @translated
    async def open_new_chat(self, timeout_ms: float = 90_000) -> None:
        """Navigate to ``/prompts/new_chat``; a redirect to the login host raises ``LoginRequired``."""
        await self.page.goto(self.new_chat_url, wait_until="domcontentloaded", timeout=timeout_ms)
        self.check_login()
        if S.PROMPTS_PATH_FRAGMENT not in self.page.url:
            raise PageBroken(f"unexpected page after navigation: {self.page.url}")

    @translated
    async def reload(self) -> None:
        await self.page.reload(wait_until="domcontentloaded", timeout=40_000)
        self.check_login()

    @translated
    async def wait_ready(self) -> str:
        """docs/aistudio.md §1.1 readiness: input container, prompt textarea, model name. Returns the model id."""
        containers = S.INPUT_CONTAINER
        try:
            await self.page.locator(containers[0]).first.wait_for(state="visible", timeout=30_000)
        except PlaywrightTimeout:
            self.check_login()
            for candidate in containers[1:]:
                try:
                    await self.page.locator(candidate).first.wait_for(state="visible", timeout=2_000)
                    break
                except PlaywrightTimeout:
                    continue
            else:
                raise PageBroken("no prompt input area on the page") from None
        await self.textarea.wait_for(state="visible", timeout=10_000)
        return await self.current_model()

    @translated
    async def current_model(self) -> str:
        await self.model_name.wait_for(state="visible", timeout=5_000)
        return (await self.model_name.inner_text()).strip()

    @translated
    async def read_prefs(self) -> dict[str, Any]:
        raw = await self.page.evaluate(scripts.READ_STORAGE, S.PREFS_KEY)
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @translated
    async def fix_preferences(self, model: str, *, force_model: str | None = None) -> bool:
        """docs/aistudio.md §1.3: write missing/incomplete preferences; True when they changed (reload needed)."""
        force = f"models/{force_model}" if force_model else None
        return bool(await self.page.evaluate(scripts.FIX_PREFS, [S.PREFS_KEY, S.PREF_DEFAULTS, model, force]))

    @translated
    async def wait_for_login_redirect(self) -> str:
        """Returns (only) when the page navigates to the Google sign-in host.

        Watches ``framenavigated`` itself instead of ``page.wait_for_url``: Playwright for Python
        leaves a cancelled ``wait_for_url`` (every job cancels this wait when it ends) listening,
        and each one left behind then sends the driver a message, kept forever, on every later
        navigation: per navigation, as many as jobs have run.
        """
        page = self.page
        if S.LOGIN_HOST in page.url:
            return page.url
        reached: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def navigated(frame: Any) -> None:
            if frame.parent_frame is None and S.LOGIN_HOST in frame.url and not reached.done():
                reached.set_result(frame.url)

        def gone(_page: Any) -> None:
            if not reached.done():
                reached.set_exception(BrowserGone("wait_for_login_redirect: the page closed or crashed"))

        listeners = {"framenavigated": navigated, "close": gone, "crash": gone}
        for event, listener in listeners.items():
            page.on(event, listener)  # type: ignore[call-overload]  # the event names are literals above
        try:
            return await reached
        finally:
            for event, listener in listeners.items():
                page.remove_listener(event, listener)
