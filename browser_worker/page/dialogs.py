"""The two tool dialogs of the run settings: function declarations and the structured-output
response schema (docs/aistudio.md §2.6, §2.7), with what each was last saved with."""

from __future__ import annotations

import json
import logging
from typing import Any

from playwright.async_api import Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker import selectors as S
from browser_worker.errors import DeclarationsRejected, PageBroken
from browser_worker.page import scripts
from browser_worker.page.overlays import Overlays
from browser_worker.page.run_settings import RunSettingsPanel
from browser_worker.page.switch import Switch
from browser_worker.page.translate import translated

log = logging.getLogger(__name__)

#: ``ToolDialogs`` schema digest for a structured-output dialog known to hold no schema.
NO_SCHEMA = ""


class ToolDialogs:
    """Function calling and structured output: each a switch plus a dialog saved only when its content changes.

    The digests say what each dialog holds: the digest it was last saved with, ``NO_SCHEMA`` for a
    schema dialog known to be empty, None when unknown (a new document, a refused save). Switching
    a toggle does not change them: the page keeps a dialog's content while its switch is off.
    """

    def __init__(self, page: Page, overlays: Overlays, run_settings: RunSettingsPanel) -> None:
        self.page = page
        self.overlays = overlays
        self.run_settings = run_settings
        self.function_calling = Switch(page.locator(S.FC_TOGGLE).first, "function calling", overlays)
        self.structured_output = Switch(
            page.locator(S.STRUCTURED_TOGGLE).first, "structured output", overlays
        )
        self._fc_digest: str | None = None
        self._schema_digest: str | None = None

    def forget(self) -> None:
        """A new document or model: nothing is known about either dialog."""
        self._fc_digest = self._schema_digest = None

    def declarations_unchanged(self, digest: str | None) -> bool:
        """The dialog was last saved with these declarations (the FC toggle must still be on)."""
        return digest is not None and digest == self._fc_digest

    def schema_unchanged(self, digest: str | None) -> bool:
        """The schema dialog was last saved with this schema (structured output must still be on)."""
        return digest is not None and digest == self._schema_digest

    # ------------------------------------------------------------------ function declarations (docs/aistudio.md §2.7)

    @translated
    async def set_function_declarations(
        self, declarations: list[dict[str, Any]] | None, digest: str | None
    ) -> None:
        """No declarations: FC off. Otherwise FC on and the dialog saved, skipped when unchanged."""
        toggle = self.function_calling
        if not declarations:
            await toggle.set(False)
            return
        await self.run_settings.set_google_search(False)
        await self.run_settings.set_url_context(False)
        was_on = await toggle.present() and await toggle.is_on()
        if was_on and self.declarations_unchanged(digest):
            return
        if await toggle.set(True) is not True:
            raise PageBroken("the function calling toggle cannot be switched on")
        dialog = await self._open_declarations_dialog()
        area = dialog.locator(S.FC_TEXTAREA).first
        await area.wait_for(state="visible", timeout=5_000)
        await area.evaluate(scripts.SET_VALUE, json.dumps(declarations, indent=2, ensure_ascii=False))
        await dialog.locator(S.FC_SAVE).first.click()
        try:
            await dialog.wait_for(state="hidden", timeout=3_000)
        except PlaywrightTimeout:
            message = await self._refusal(dialog)
            self._fc_digest = None
            raise DeclarationsRejected(f"AI Studio rejected the function declarations: {message}") from None
        self._fc_digest = digest

    async def _open_declarations_dialog(self) -> Locator:
        """Open the dialog on its code editor tab."""
        await self.overlays.clear()
        await self.page.locator(S.FC_EDIT).first.click()
        dialog = self.page.locator(S.FC_DIALOG).or_(self.page.locator(S.FC_DIALOG_FALLBACK)).first
        await dialog.wait_for(state="visible", timeout=5_000)
        tab = dialog.locator(S.FC_CODE_TAB)
        if await tab.count() and await tab.first.get_attribute("aria-selected") != "true":
            await tab.first.click()
            await expect(tab.first).to_have_attribute("aria-selected", "true", timeout=3_000)
        return dialog

    # ------------------------------------------------------------------ response schema (docs/aistudio.md §2.6)

    @translated
    async def set_structured_output(
        self, enabled: bool, schema: dict[str, Any] | None, digest: str | None = None
    ) -> bool | None:
        """Structured output (JSON) on or off, with the response schema when given;
        ``digest`` (of the schema) is remembered once the dialog saved it (``schema_unchanged``).
        Without a schema the dialog is left as it is (``clear_response_schema`` empties it)."""
        state = await self.structured_output.set(enabled)
        if not enabled or state is not True or schema is None:
            return state
        self._schema_digest = None
        dialog = await self._open_schema_dialog()
        area = dialog.locator(S.SCHEMA_TEXTAREA).first
        await area.evaluate(scripts.SET_VALUE, json.dumps(schema, indent=2, ensure_ascii=False))
        await dialog.locator(S.SCHEMA_SAVE).first.click()
        try:
            await dialog.wait_for(state="hidden", timeout=3_000)
        except PlaywrightTimeout:
            message = await self._refusal(dialog)
            raise DeclarationsRejected(f"AI Studio rejected the response schema: {message}") from None
        self._schema_digest = digest
        return True

    @translated
    async def clear_response_schema(self) -> bool:
        """Leave structured output on with an empty schema dialog, for JSON without a schema.

        The page keeps a saved schema while the toggle is off and its dialog cannot save an empty
        one, so a schema found there is removed with "Reset default settings", which puts every run
        setting back to its default. Returns True when that happened (the caller sets the others
        again); False when nothing had to change or the page has no structured-output toggle.
        """
        if self._schema_digest == NO_SCHEMA:
            return False
        toggle = self.structured_output
        if await toggle.set(True) is not True:
            return False
        if not await self._saved_schema():
            self._schema_digest = NO_SCHEMA
            return False
        log.info("a response schema from an earlier request is saved on the page: resetting the run settings")
        self._schema_digest = None
        await self.overlays.clear()
        await self.page.locator(S.RESET_SETTINGS).first.click()
        await expect(toggle.locator).to_have_attribute("aria-checked", "false", timeout=3_000)
        await toggle.set(True)
        if await self._saved_schema():
            raise PageBroken("the saved response schema did not go away with Reset default settings")
        self._schema_digest = NO_SCHEMA
        return True

    async def _saved_schema(self) -> str:
        """The text of the schema the structured-output dialog holds ("" when none); the dialog is closed again."""
        dialog = await self._open_schema_dialog()
        text = (await dialog.locator(S.SCHEMA_TEXTAREA).first.input_value()).strip()
        await _close(dialog)
        return text

    async def _open_schema_dialog(self) -> Locator:
        await self.overlays.clear()
        await self.page.locator(S.STRUCTURED_EDIT).first.click()
        dialog = self.page.locator(S.SCHEMA_DIALOG).first
        await dialog.wait_for(state="visible", timeout=5_000)
        return dialog

    async def _refusal(self, dialog: Locator) -> str:
        """A dialog that stayed open after Save: its error message, after closing it."""
        err = dialog.locator(S.FC_ERROR)
        message = (await err.first.inner_text()).strip() if await err.count() else ""
        await _close(dialog)
        return message or "dialog stayed open"


async def _close(dialog: Locator) -> None:
    close = dialog.locator(S.FC_CLOSE)
    if await close.count():
        await close.first.click()
    await dialog.wait_for(state="hidden", timeout=3_000)
