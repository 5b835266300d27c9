"""Reading the answer: the generation state while it runs, then the final markdown, the thoughts and
the native function calls of the last turn (docs/aistudio.md §3.6, §3.7)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker import selectors as S
from browser_worker.page import scripts
from browser_worker.page.translate import first_line, translated

log = logging.getLogger(__name__)

#: DOM watcher polling while it follows the answer text (DOM tier).
TEXT_POLL_MS = 100
#: DOM watcher polling while the stream tier delivers the text: only done and error signs matter.
SIGNAL_POLL_MS = 500


@dataclass(frozen=True)
class DomState:
    """One reading of the chat's generation state (see ``scripts.SNAPSHOT``)."""

    turns: int
    model_turn: bool
    answer: str
    stable_prefix: str
    thoughts: str
    function_calls: int
    stop_visible: bool
    run_disabled: bool
    textarea_empty: bool
    edit_visible: bool
    quota: str
    toast: str
    #: The page's own serialisation of this state, handed back to ``wait_dom_change``.
    key: str = ""

    @property
    def done(self) -> bool:
        """docs/aistudio.md §3.6: run disabled + textarea empty + Edit visible on the model turn."""
        return (
            self.model_turn
            and self.edit_visible
            and self.run_disabled
            and self.textarea_empty
            and not self.stop_visible
        )

    @property
    def busy(self) -> bool:
        return self.stop_visible


def _snapshot_selectors() -> dict[str, Any]:
    """The selectors ``scripts.SNAPSHOT`` reads by name (read per call, so overrides apply)."""
    return {
        "turn": S.CHAT_TURN,
        "modelContainer": S.MODEL_TURN_CONTAINER,
        "thoughtText": S.THOUGHT_TEXT,
        "thoughtContainer": S.THOUGHT_CONTAINER,
        "cmarkRoot": S.CMARK_ROOT,
        "functionCall": S.FUNCTION_CALL_CHUNK,
        "editButton": S.EDIT_BUTTON,
        "editLabel": S.EDIT_LABEL,
        "run": S.RUN_BUTTON,
        "textarea": S.PROMPT_TEXTAREA,
        "stop": S.STOP_GENERATING,
        "quota": S.QUOTA_CALLOUT,
        "legacyQuota": S.LEGACY_QUOTA_CALLOUT,
        "legacyQuotaText": S.LEGACY_QUOTA_TEXT,
        "toast": S.TOAST,
    }


class AnswerReader:
    """The last turn, read by script while it grows and through the page's own controls once done."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @translated
    async def dom_state(self) -> DomState:
        return DomState(**await self.page.evaluate(scripts.DOM_STATE, _snapshot_selectors()))

    @translated
    async def wait_dom_change(
        self, previous: DomState | None, timeout_ms: float, *, text: bool = True
    ) -> DomState | None:
        """Wait on the page until the generation state differs from ``previous``; None on timeout.

        ``text=False`` (the stream tier is live and delivers the text): the answer, its stable
        prefix and the thoughts are not read (they stay empty), so only the done flag, the
        function-call count, Stop, the quota callout and the toast can wake the watcher, polled
        every ``SIGNAL_POLL_MS`` instead of on every chunk.
        """
        selectors = _snapshot_selectors() if text else {**_snapshot_selectors(), "lite": True}
        try:
            handle = await self.page.wait_for_function(
                scripts.DOM_CHANGED,
                arg=[selectors, previous.key if previous else ""],
                polling=TEXT_POLL_MS if text else SIGNAL_POLL_MS,
                timeout=timeout_ms,
            )
        except PlaywrightTimeout:
            return None
        data = await handle.json_value()
        await handle.dispose()
        return DomState(**data)

    @translated
    async def read_final_answer(self) -> tuple[str, str]:
        """The raw answer markdown: Edit (data-value), else Copy markdown, else the rendered text.

        Returns (text, method).
        """
        last = self.page.locator(S.LAST_TURN)
        try:
            return await self._read_by_edit(last), "edit"
        except (PlaywrightError, AssertionError) as exc:
            log.info("edit path failed: %s", first_line(exc))
        try:
            return await self._read_by_copy(last), "copy"
        except (PlaywrightError, AssertionError) as exc:
            log.info("copy path failed: %s", first_line(exc))
        fallback = self.page.locator(S.FINAL_RESPONSE).last
        return (await fallback.inner_text(timeout=5_000)), "dom"

    async def _read_by_edit(self, last: Locator) -> str:
        await last.hover(timeout=3_000)
        await last.locator(S.EDIT_BUTTON).first.click(timeout=3_000)
        stop_editing = last.get_by_label(S.STOP_EDITING_LABEL, exact=True).first
        await stop_editing.wait_for(state="visible", timeout=3_000)
        holder = last.locator(S.EDIT_TEXT).first
        value = await holder.get_attribute("data-value", timeout=3_000)
        if value is None:
            value = await holder.locator(S.EDIT_TEXTAREA).input_value(timeout=3_000)
        await stop_editing.click(timeout=3_000)
        await expect(last.locator(S.EDIT_TEXT)).to_have_count(0, timeout=3_000)
        return value

    async def _read_by_copy(self, last: Locator) -> str:
        await last.hover(timeout=3_000)
        await last.get_by_label(S.OPTIONS_LABEL).first.click(timeout=3_000)
        item = self.page.get_by_role(S.COPY_MARKDOWN_ROLE, name=S.COPY_MARKDOWN_NAME)
        await item.click(force=True, timeout=3_000)
        text: str = await self.page.evaluate(scripts.READ_CLIPBOARD)
        return text

    @translated
    async def read_thoughts(self) -> str:
        loc = self.page.locator(S.LAST_TURN).locator(S.THOUGHT_TEXT)
        if not await loc.count():
            return ""
        return (await loc.first.text_content()) or ""

    @translated
    async def read_function_calls(self) -> list[tuple[str, dict[str, Any]]]:
        """Native calls rendered in the last turn (docs/aistudio.md §3.7): [(name, arguments)]."""
        chunks = self.page.locator(S.LAST_TURN).locator(S.FUNCTION_CALL_CHUNK)
        calls: list[tuple[str, dict[str, Any]]] = []
        for i in range(await chunks.count()):
            chunk = chunks.nth(i)
            name = (await chunk.locator(S.FUNCTION_CALL_NAME).first.text_content() or "").strip()
            args_text = ""
            code = chunk.locator(S.FUNCTION_CALL_ARGS)
            if await code.count():
                args_text = (await code.first.text_content()) or ""
            try:
                args = json.loads(args_text) if args_text.strip() else {}
            except ValueError:
                args = {"_raw": args_text}
            calls.append((name, args if isinstance(args, dict) else {"value": args}))
        return calls
