"""The prompt composer: the prompt box, attachments and the Run button (docs/aistudio.md §2.2, §2.3, §3.4)."""

from __future__ import annotations

import logging

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker import selectors as S
from browser_worker.errors import PageBroken
from browser_worker.page import scripts
from browser_worker.page.overlays import Overlays, blockers
from browser_worker.page.translate import first_line, translated

log = logging.getLogger(__name__)


class PromptComposer:
    """Fills the prompt by script, attaches files, clicks Run and checks that it took."""

    def __init__(self, page: Page, overlays: Overlays) -> None:
        self.page = page
        self.overlays = overlays
        #: The prompt box (a turn in edit mode has a textarea of its own).
        self.textarea = page.locator(S.PROMPT_TEXTAREA).filter(has_not=page.locator(S.INSIDE_CHAT_TURN))
        self.run_button = page.locator(S.RUN_BUTTON)

    @translated
    async def fill_prompt(self, text: str) -> bool:
        """Set the prompt by script (value + bubbling input/change); a large prompt is never typed.

        Returns whether Run is enabled right after (``submit`` then skips its waits).
        """
        await self.textarea.wait_for(state="visible", timeout=10_000)
        return bool(
            await self.textarea.evaluate(scripts.FILL_PROMPT, [text, S.RUN_BUTTON, S.STOP_GENERATING])
        )

    async def clear_prompt(self) -> None:
        """Empty the prompt box without waiting for it (the page may be half broken)."""
        await self.page.evaluate(scripts.CLEAR_PROMPT, [S.PROMPT_TEXTAREA, S.CHAT_TURN])

    @translated
    async def upload(self, paths: list[str]) -> None:
        """Attach files through the insert menu's upload item (file chooser or inner input)."""
        trigger = self.page.locator(S.UPLOAD_TRIGGER).first
        await self.overlays.clear()
        await trigger.click()
        menu = self.page.locator(S.OVERLAY_MENU)
        try:
            await menu.first.wait_for(state="visible", timeout=3_000)
        except PlaywrightTimeout:
            await trigger.click()
            await menu.first.wait_for(state="visible", timeout=3_000)
        items = self.page.locator(S.UPLOAD_MENU_ITEM)
        item = None
        for label in S.UPLOAD_MENU_TEXTS:
            candidate = items.filter(has_text=label)
            if await candidate.count():
                item = candidate.first
                break
        if item is None:
            raise PageBroken("the upload menu item is missing")
        inner = item.locator(S.FILE_INPUT)
        if await inner.count():
            await inner.set_input_files(paths)
            if await menu.count():
                await self.page.keyboard.press("Escape")
        else:
            async with self.page.expect_file_chooser(timeout=5_000) as chooser_info:
                await item.click()
            chooser = await chooser_info.value
            await chooser.set_files(paths)
        await self.overlays.accept_dialogs()

    @translated
    async def submit(self, run_enabled: bool = False) -> None:
        """Click Run (keyboard fallbacks: Enter, then Ctrl+Enter) and check that it took.

        ``run_enabled`` (what ``fill_prompt`` returned): Run is known to be enabled, so it is
        clicked by script in one round trip when no dialog, backdrop, tooltip or banner is in the
        way; otherwise (or when that click did not take) the careful path below runs.
        """
        if run_enabled:
            if await self.page.evaluate(scripts.CLICK_RUN, [S.RUN_BUTTON, S.STOP_GENERATING, blockers()]):
                if await self._submitted():
                    return
                log.warning("the scripted run click did not take; trying the keyboard")
                await self._submit_by_keyboard()
                return
        await expect(self.run_button).to_be_enabled(timeout=10_000)
        await self.overlays.clear_all()
        try:
            await self.run_button.click(timeout=5_000)
            return
        except PlaywrightError as exc:
            log.warning("run click failed (%s); trying the keyboard", first_line(exc))
        if await self._submitted():
            return  # the click went through after all (a slow page)
        await self._submit_by_keyboard()

    async def _submit_by_keyboard(self) -> None:
        """The fallback when a Run click did not take: Enter, then Ctrl+Enter, in the prompt box."""
        for keys in ("Enter", "Control+Enter"):
            await self.textarea.focus()
            await self.textarea.press(keys)
            if await self._submitted():
                return
        raise PageBroken("the prompt could not be submitted")

    async def _submitted(self) -> bool:
        """docs/aistudio.md §3.4: the textarea emptied, or the page shows a generation or a model turn."""
        try:
            await self.page.wait_for_function(
                scripts.SUBMITTED,
                arg=[S.PROMPT_TEXTAREA, S.CHAT_TURN, S.STOP_GENERATING, S.MODEL_TURN],
                timeout=2_000,
            )
            return True
        except PlaywrightTimeout:
            return False
