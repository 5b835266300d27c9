"""The AI Studio chat page as one object: a facade over the page's regions (STYLE patterns 12, 13, 7).

``StudioPage`` creates the regions on one Playwright page and exposes them (``navigation``,
``composer``, ``run_settings``, ``dialogs``, ``answer``, ``chat``, ``overlays``). It keeps what
spans regions (a model switch, a fresh chat document) and the health of the document (self-test,
liveness, garbage collection, snapshots), and it names, as thin delegates, the intents the job and
the worker call, so that they read as one vocabulary.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from browser_worker import selectors as S
from browser_worker.errors import BrowserGone
from browser_worker.mapping.thinking import ThinkingPlan
from browser_worker.page import scripts
from browser_worker.page.answer import AnswerReader, DomState
from browser_worker.page.chat import ChatControls
from browser_worker.page.composer import PromptComposer
from browser_worker.page.dialogs import ToolDialogs
from browser_worker.page.navigation import Navigation
from browser_worker.page.overlays import Overlays
from browser_worker.page.run_settings import RunSettings, RunSettingsPanel
from browser_worker.page.translate import first_line, translated
from shared.errors import ModelSwitchFailed

#: ``DomState`` and ``RunSettings`` are re-exported: the job reads the page's answers in these types.
__all__ = ["DomState", "RunSettings", "StudioPage"]

log = logging.getLogger(__name__)

#: Playwright's default of 30 s hides a stuck step for too long.
DEFAULT_TIMEOUT_MS = 10_000
#: Longest wait for a full garbage collection of the page (~0.2 s after a 4 MB prompt).
GC_TIMEOUT_S = 10.0


class StudioPage:
    """Intents on the AI Studio chat page: start-up, settings, submit, read, stop, clear."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        page.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.overlays = Overlays(page)
        self.composer = PromptComposer(page, self.overlays)
        self.navigation = Navigation(page, base_url, self.composer.textarea)
        self.run_settings = RunSettingsPanel(page, self.overlays)
        self.dialogs = ToolDialogs(page, self.overlays, self.run_settings)
        self.answer = AnswerReader(page)
        self.chat = ChatControls(page, self.overlays)

    # ------------------------------------------------------------------ across regions

    @translated
    async def switch_model(self, target: str) -> None:
        """Write ``promptModel``, open a new chat and verify both the storage and the model name (docs/aistudio.md §8)."""
        nav = self.navigation
        if await nav.current_model() == target:
            return
        await nav.fix_preferences(target, force_model=target)
        await nav.open_new_chat(timeout_ms=30_000)
        await nav.wait_ready()
        prefs = await nav.read_prefs()
        if prefs.get("promptModel") != f"models/{target}":
            raise ModelSwitchFailed(
                f"the page did not accept model {target!r} (it chose {prefs.get('promptModel')!r})"
            )
        shown = await nav.current_model()
        if shown != target:
            raise ModelSwitchFailed(f"the page shows model {shown!r} instead of {target!r}")
        self.dialogs.forget()  # the new model's settings are its defaults
        await self.chat.ensure_temporary_chat()

    @translated
    async def fresh_chat(self) -> str:
        """A new chat in a new document: empty the prompt box, load ``/prompts/new_chat``, wait until
        ready, temporary chat on. Returns the model the page shows.

        Unlike ``new_chat`` (which empties the chat inside the same document), everything the old
        document held becomes garbage: the rendered turns, the prompt box's value, whatever copies
        of the prompt the page's own script keeps. Costs a page load.
        """
        await self.composer.clear_prompt()
        await self.navigation.open_new_chat(timeout_ms=30_000)
        model = await self.navigation.wait_ready()
        self.dialogs.forget()  # a new document: no dialog is known to be set
        await self.chat.ensure_temporary_chat()
        return model

    # ------------------------------------------------------------------ the document's health

    @translated
    async def self_test(self) -> dict[str, bool]:
        """Which named selectors resolve on the idle page (docs/aistudio.md §10.1, ``S.SELF_TEST``), once the
        known dialogs are accepted, and ``page_uncovered``: no unknown dialog lies over the prompt box."""
        await self.overlays.clear_all()
        found = {
            name: await self.page.locator(S.selector(const)).count() > 0
            for name, const in S.SELF_TEST.items()
        }
        found["page_uncovered"] = bool(await self.page.evaluate(scripts.UNCOVERED, S.PROMPT_TEXTAREA))
        return found

    @translated
    async def check_alive(self) -> None:
        """Raise ``BrowserGone`` when the page or browser no longer answers."""
        if self.page.is_closed():
            raise BrowserGone("the page is closed")
        try:
            async with asyncio.timeout(3):
                await self.page.evaluate(scripts.PING)
        except TimeoutError:
            raise BrowserGone("the page does not answer") from None

    async def collect_garbage(self) -> bool:
        """Chromium only: a full garbage collection of the page's heaps now, through the DevTools
        protocol (``HeapProfiler.collectGarbage``), instead of whenever the page next allocates
        enough to trigger one. False when nothing was done: another browser (Camoufox/Firefox has
        no DevTools protocol), or the call failed (logged; never an error for the job)."""
        browser = self.page.context.browser
        if browser is None or browser.browser_type.name != "chromium":
            return False
        try:
            async with asyncio.timeout(GC_TIMEOUT_S):
                cdp = await self.page.context.new_cdp_session(self.page)
                try:
                    await cdp.send("HeapProfiler.collectGarbage")
                finally:
                    await cdp.detach()
        except (PlaywrightError, TimeoutError) as exc:
            log.warning("garbage collection of the page failed: %s", first_line(exc))
            return False
        return True

    @translated
    async def screenshot(self) -> bytes:
        return await self.page.screenshot(full_page=False, timeout=5_000)

    @translated
    async def html(self) -> str:
        return await self.page.content()

    # ------------------------------------------------------------------ the job's and the worker's intents (thin delegates)

    def is_login_url(self) -> bool:
        return self.navigation.is_login_url()

    async def open_new_chat(self, timeout_ms: float = 90_000) -> None:
        await self.navigation.open_new_chat(timeout_ms)

    async def reload(self) -> None:
        await self.navigation.reload()

    async def wait_ready(self) -> str:
        return await self.navigation.wait_ready()

    async def current_model(self) -> str:
        return await self.navigation.current_model()

    async def fix_preferences(self, model: str, *, force_model: str | None = None) -> bool:
        return await self.navigation.fix_preferences(model, force_model=force_model)

    async def wait_for_login_redirect(self) -> str:
        return await self.navigation.wait_for_login_redirect()

    async def read_run_settings(self) -> RunSettings:
        return await self.run_settings.read()

    async def set_temperature(self, value: float) -> None:
        await self.run_settings.set_temperature(value)

    async def set_top_p(self, value: float) -> None:
        await self.run_settings.set_top_p(value)

    async def set_max_output_tokens(self, value: int) -> None:
        await self.run_settings.set_max_output_tokens(value)

    async def set_stop_sequences(self, wanted: list[str]) -> None:
        await self.run_settings.set_stop_sequences(wanted)

    async def open_tools_group(self) -> bool:
        return await self.run_settings.open_tools_group()

    async def set_url_context(self, want: bool) -> bool | None:
        return await self.run_settings.set_url_context(want)

    async def set_google_search(self, want: bool) -> bool | None:
        return await self.run_settings.set_google_search(want)

    async def apply_thinking(self, plan: ThinkingPlan) -> None:
        await self.run_settings.apply_thinking(plan)

    def declarations_unchanged(self, digest: str | None) -> bool:
        return self.dialogs.declarations_unchanged(digest)

    def schema_unchanged(self, digest: str | None) -> bool:
        return self.dialogs.schema_unchanged(digest)

    async def set_function_declarations(
        self, declarations: list[dict[str, Any]] | None, digest: str | None
    ) -> None:
        await self.dialogs.set_function_declarations(declarations, digest)

    async def set_structured_output(
        self, enabled: bool, schema: dict[str, Any] | None, digest: str | None = None
    ) -> bool | None:
        return await self.dialogs.set_structured_output(enabled, schema, digest)

    async def clear_response_schema(self) -> bool:
        return await self.dialogs.clear_response_schema()

    async def fill_prompt(self, text: str) -> bool:
        return await self.composer.fill_prompt(text)

    async def upload(self, paths: list[str]) -> None:
        await self.composer.upload(paths)

    async def submit(self, run_enabled: bool = False) -> None:
        await self.composer.submit(run_enabled)

    async def dom_state(self) -> DomState:
        return await self.answer.dom_state()

    async def wait_dom_change(
        self, previous: DomState | None, timeout_ms: float, *, text: bool = True
    ) -> DomState | None:
        return await self.answer.wait_dom_change(previous, timeout_ms, text=text)

    async def read_final_answer(self) -> tuple[str, str]:
        return await self.answer.read_final_answer()

    async def read_thoughts(self) -> str:
        return await self.answer.read_thoughts()

    async def read_function_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return await self.answer.read_function_calls()

    async def stop_generation(self, *, settle_ms: float = 0) -> bool:
        return await self.chat.stop_generation(settle_ms=settle_ms)

    async def new_chat(self) -> None:
        await self.chat.new_chat()

    async def ensure_temporary_chat(self) -> bool:
        return await self.chat.ensure_temporary_chat()
