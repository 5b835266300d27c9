"""The chat controls: Stop, New chat and the temporary-chat toggle (docs/aistudio.md §2.1, §2.3, §2.8)."""

from __future__ import annotations

import logging

from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker import selectors as S
from browser_worker.page import scripts
from browser_worker.page.overlays import Overlays
from browser_worker.page.translate import translated

log = logging.getLogger(__name__)


def _temp_chat_selectors() -> dict[str, str]:
    """The selectors ``scripts.TEMP_CHAT_ACTIVE`` reads by name (read per call, so overrides apply)."""
    return {
        "indicator": S.TEMP_CHAT_INDICATOR,
        "checkmark": S.TEMP_CHAT_CHECKMARK,
        "toggle": S.TEMP_CHAT_TOGGLE,
        "text": S.TEMP_CHAT_TEXT,
        "activeClass": S.TEMP_CHAT_ACTIVE_CLASS,
    }


class ChatControls:
    """Stops a generation, empties the chat in the same document, keeps temporary chat on."""

    def __init__(self, page: Page, overlays: Overlays) -> None:
        self.page = page
        self.overlays = overlays
        self.stop_button = page.locator(S.STOP_GENERATING)
        self.new_chat_button = page.locator(S.NEW_CHAT)
        #: The last ``ensure_temporary_chat`` could not turn temporary chat on.
        self.temporary_chat_off = False

    @translated
    async def stop_generation(self, *, settle_ms: float = 0) -> bool:
        """Click the run button while it reads "Stop generating"; True when a generation was stopped.

        ``settle_ms``: first give a page that is finishing by itself (the stream already ended) that
        long to show its own done state. The click is one script that clicks only a button still
        reading "Stop generating", so a page that finished meanwhile is success, not a timeout.
        """
        if not await self.stop_button.count():
            return False
        if settle_ms:
            try:
                await expect(self.stop_button).to_have_count(0, timeout=settle_ms)
                return False
            except AssertionError:
                pass
        if not await self.page.evaluate(scripts.CLICK_STOP, S.STOP_GENERATING):
            log.info("the generation ended by itself before Stop was clicked")
            return False
        await expect(self.stop_button).to_have_count(0, timeout=10_000)
        return True

    @translated
    async def new_chat(self) -> None:
        """New chat → "Discard and continue" → temporary chat on (docs/aistudio.md §3.1 step 12)."""
        await self.overlays.dismiss()
        if await self.stop_button.count():
            await self.stop_generation()
        button = self.new_chat_button
        await button.wait_for(state="attached", timeout=5_000)
        if await button.is_enabled():
            await button.click(timeout=3_000)
            confirm = self.page.locator(S.DISCARD_CONFIRM)
            try:
                await confirm.wait_for(state="visible", timeout=2_000)
                await confirm.click(timeout=3_000)
                await confirm.wait_for(state="hidden", timeout=5_000)
            except PlaywrightTimeout:
                pass
        await expect(self.page.locator(S.MODEL_TURN)).to_have_count(0, timeout=5_000)
        await self.ensure_temporary_chat()

    @translated
    async def temporary_chat_active(self) -> bool:
        return bool(await self.page.evaluate(scripts.TEMP_CHAT_ACTIVE, _temp_chat_selectors()))

    @translated
    async def ensure_temporary_chat(self) -> bool:
        """docs/aistudio.md §2.1: turn temporary chat on (never off). False when the control is missing or does
        not respond (``temporary_chat_off``: the page then serves without it, degraded).

        Tried twice: a page that is still booting may re-render the header under the click.
        """
        try:
            on = await self._turn_on_temporary_chat()
        except PlaywrightTimeout as exc:
            log.warning("temporary chat could not be turned on: %s", str(exc).splitlines()[0])
            on = False
        self.temporary_chat_off = not on
        return on

    async def _turn_on_temporary_chat(self) -> bool:
        for attempt in (1, 2):
            if await self.temporary_chat_active():
                return True
            await self.overlays.clear()
            toggle = self.page.locator(S.TEMP_CHAT_TOGGLE).first
            menu = self.page.locator(S.MORE_ACTIONS).first
            if not await toggle.is_visible() and await menu.count():
                await menu.click(timeout=5_000)
            try:
                await toggle.wait_for(state="visible", timeout=5_000)
            except PlaywrightTimeout:
                log.warning("temporary chat toggle not found")
                return False
            try:
                await toggle.click(timeout=3_000)
            except PlaywrightTimeout:
                await toggle.click(force=True)
            try:
                await self.page.wait_for_function(
                    scripts.TEMP_CHAT_ACTIVE, arg=_temp_chat_selectors(), timeout=3_000
                )
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
                log.info("temporary chat did not turn on; trying again")
            finally:
                if await menu.count() and await menu.get_attribute("aria-expanded") == "true":
                    await self.page.keyboard.press("Escape")
        return True
