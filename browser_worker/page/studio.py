"""The AI Studio chat page as a page object with user intents (STYLE patterns 12, 13, 7).

Only this module builds locators. Each public intent waits on the page
(auto-waiting locators, ``expect``, ``wait_for_function``), never on the clock,
and turns Playwright's exceptions into the worker's error types.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from playwright._impl._errors import TargetClosedError
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker import selectors as S
from browser_worker.errors import BrowserGone, DeclarationsRejected, PageBroken, PageUnreachable
from browser_worker.page import scripts
from shared.errors import LoginRequired, ModelSwitchFailed, ServiceError

log = logging.getLogger(__name__)

#: Playwright's default of 30 s hides a stuck step for too long.
DEFAULT_TIMEOUT_MS = 10_000
#: DOM watcher polling while it follows the answer text (DOM tier).
TEXT_POLL_MS = 100
#: DOM watcher polling while the stream tier delivers the text: only done and error signs matter.
SIGNAL_POLL_MS = 500
#: Longest wait for a full garbage collection of the page (~0.2 s after a 4 MB prompt).
GC_TIMEOUT_S = 10.0

UNREACHABLE_MARKERS = (
    "ERR_CONNECTION_REFUSED",
    "ERR_PROXY_CONNECTION_FAILED",
    "ERR_TUNNEL_CONNECTION_FAILED",
    "ERR_CONNECTION_RESET",
    "ERR_CONNECTION_CLOSED",
    "ERR_NAME_NOT_RESOLVED",
    "ERR_ADDRESS_UNREACHABLE",
    "NS_ERROR_CONNECTION_REFUSED",
    "NS_ERROR_PROXY_CONNECTION_REFUSED",
)


def _first_line(exc: BaseException) -> str:
    """The error's first line plus the last line of Playwright's call log (why it waited)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
    text = lines[0][:300]
    if len(lines) > 2:
        text += f" [{lines[-1][:200]}]"
    return text


def translated[**P, R](fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn Playwright exceptions raised by an intent into the worker's typed errors."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ServiceError:
            raise
        except TargetClosedError as exc:
            raise BrowserGone(f"{fn.__name__}: the page or browser closed ({_first_line(exc)})") from None
        except PlaywrightTimeout as exc:
            raise PageBroken(f"{fn.__name__}: timed out ({_first_line(exc)})") from None
        except AssertionError as exc:
            raise PageBroken(f"{fn.__name__}: {_first_line(exc)}") from None
        except PlaywrightError as exc:
            text = str(exc)
            if "has been closed" in text or "crashed" in text.lower():
                raise BrowserGone(f"{fn.__name__}: {_first_line(exc)}") from None
            if any(marker in text for marker in UNREACHABLE_MARKERS):
                raise PageUnreachable(f"AI Studio is unreachable: {_first_line(exc)}") from None
            raise PageBroken(f"{fn.__name__}: {_first_line(exc)}") from None

    return wrapper


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
        return self.model_turn and self.edit_visible and self.run_disabled and self.textarea_empty and not self.stop_visible

    @property
    def busy(self) -> bool:
        return self.stop_visible


#: ``StudioPage._schema_digest`` for a structured-output dialog known to hold no schema.
NO_SCHEMA = ""

_SNAPSHOT_SELECTORS = {
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

@dataclass(frozen=True)
class RunSettings:
    """Every run setting a job may change, read in one round trip (``read_run_settings``).

    ``None`` means the control is absent (or, for numbers, unreadable).
    """

    model: str
    temperature: float | None
    top_p: float | None
    max_tokens: float | None
    stops: tuple[str, ...]
    tools_open: bool | None
    structured: bool | None
    url_context: bool | None
    search: bool | None
    fc: bool | None
    thinking_main: bool | None
    thinking_manual: bool | None
    budget: str | None
    level: str | None


_RUN_SETTINGS_SELECTORS = {
    "model": S.MODEL_NAME,
    "temperature": S.TEMPERATURE_INPUT,
    "topP": S.TOP_P_INPUT,
    "maxTokens": S.MAX_TOKENS_INPUT,
    "stopChip": S.STOP_CHIP_REMOVE,
    "stopChipPrefix": S.STOP_CHIP_LABEL_PREFIX,
    "toolsHeader": S.TOOLS_GROUP_HEADER,
    "expanded": S.GROUP_EXPANDED_CLASS,
    "structured": S.STRUCTURED_TOGGLE,
    "urlContext": S.URL_CONTEXT_TOGGLE,
    "search": S.SEARCH_TOGGLE,
    "fc": S.FC_TOGGLE,
    "thinkingMain": S.THINKING_MAIN_TOGGLE,
    "thinkingManual": S.THINKING_MANUAL_TOGGLE,
    "budget": S.THINKING_BUDGET_INPUT,
    "levelSelect": S.THINKING_LEVEL_SELECT,
    "levelValue": S.THINKING_LEVEL_VALUE,
}

class StudioPage:
    """Intents on the AI Studio chat page: start-up, settings, submit, read, stop, clear."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        page.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.base_url = base_url.rstrip("/")
        self.new_chat_url = self.base_url + S.NEW_CHAT_PATH
        self.textarea = page.locator(S.PROMPT_TEXTAREA).filter(
            has_not=page.locator(S.INSIDE_CHAT_TURN)
        )
        self.run_button = page.locator(S.RUN_BUTTON)
        self.stop_button = page.locator(S.STOP_GENERATING)
        self.model_name = page.locator(S.MODEL_NAME).first
        self.new_chat_button = page.locator(S.NEW_CHAT)
        self.fc_toggle = page.locator(S.FC_TOGGLE).first
        self._fc_digest: str | None = None
        #: What the structured-output dialog holds: the digest of the schema it was last saved with,
        #: ``NO_SCHEMA`` when it is known to be empty, None when unknown (a new document, a refused save).
        #: Switching the toggle does not change it: the page keeps the schema while structured output is off.
        self._schema_digest: str | None = None

    # ------------------------------------------------------------------ start-up

    def is_login_url(self) -> bool:
        return S.LOGIN_HOST in self.page.url

    def _check_login(self) -> None:
        if self.is_login_url():
            raise LoginRequired("the saved Google login is missing or expired: run `make login`")

    @translated
    async def open_new_chat(self, timeout_ms: float = 90_000) -> None:
        """Navigate to ``/prompts/new_chat``; a redirect to the login host raises ``LoginRequired``."""
        await self.page.goto(self.new_chat_url, wait_until="domcontentloaded", timeout=timeout_ms)
        self._check_login()
        if S.PROMPTS_PATH_FRAGMENT not in self.page.url:
            raise PageBroken(f"unexpected page after navigation: {self.page.url}")

    @translated
    async def reload(self) -> None:
        await self.page.reload(wait_until="domcontentloaded", timeout=40_000)
        self._check_login()

    @translated
    async def wait_ready(self) -> str:
        """docs/aistudio.md §1.1 readiness: input container, prompt textarea, model name. Returns the model id."""
        containers = S.INPUT_CONTAINER
        try:
            await self.page.locator(containers[0]).first.wait_for(state="visible", timeout=30_000)
        except PlaywrightTimeout:
            self._check_login()
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
    async def temporary_chat_active(self) -> bool:
        return bool(await self.page.evaluate(scripts.TEMP_CHAT_ACTIVE, self._temp_args()))

    @translated
    async def ensure_temporary_chat(self) -> bool:
        """docs/aistudio.md §2.1: turn temporary chat on (never off). False when the control is missing.

        Tried twice: a page that is still booting may re-render the header under the click.
        """
        for attempt in (1, 2):
            if await self.temporary_chat_active():
                return True
            await self._clear_obstacles()
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
                await self.page.wait_for_function(scripts.TEMP_CHAT_ACTIVE, arg=self._temp_args(), timeout=3_000)
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
                log.info("temporary chat did not turn on; trying again")
            finally:
                if await menu.count() and await menu.get_attribute("aria-expanded") == "true":
                    await self.page.keyboard.press("Escape")
        return True

    @staticmethod
    def _temp_args() -> dict[str, str]:
        return {
            "indicator": S.TEMP_CHAT_INDICATOR,
            "checkmark": S.TEMP_CHAT_CHECKMARK,
            "toggle": S.TEMP_CHAT_TOGGLE,
            "text": S.TEMP_CHAT_TEXT,
            "activeClass": S.TEMP_CHAT_ACTIVE_CLASS,
        }

    @translated
    async def self_test(self) -> dict[str, bool]:
        """Which critical selectors resolve on the idle page (docs/aistudio.md §10.1)."""
        result: dict[str, bool] = {}
        for name, selector in S.SELF_TEST.items():
            result[name] = await self.page.locator(selector).count() > 0
        return result

    # ------------------------------------------------------------------ model switch (docs/aistudio.md §8)

    @translated
    async def switch_model(self, target: str) -> None:
        """Write ``promptModel``, open a new chat and verify both the storage and the model name."""
        if await self.current_model() == target:
            return
        await self.fix_preferences(target, force_model=target)
        await self.page.goto(self.new_chat_url, wait_until="domcontentloaded", timeout=30_000)
        self._check_login()
        await self.wait_ready()
        prefs = await self.read_prefs()
        if prefs.get("promptModel") != f"models/{target}":
            raise ModelSwitchFailed(f"the page did not accept model {target!r} (it chose {prefs.get('promptModel')!r})")
        shown = await self.current_model()
        if shown != target:
            raise ModelSwitchFailed(f"the page shows model {shown!r} instead of {target!r}")
        self._fc_digest = self._schema_digest = None  # the new model's settings are its defaults
        await self.ensure_temporary_chat()

    # ------------------------------------------------------------------ run settings (docs/aistudio.md §2.6, §3.3)

    @translated
    async def read_run_settings(self) -> RunSettings:
        """Every control ``JobRunner._prepare`` needs, in one ``evaluate`` (setters still read back)."""
        data = await self.page.evaluate(scripts.RUN_SETTINGS, _RUN_SETTINGS_SELECTORS)
        data["stops"] = tuple(data["stops"])
        return RunSettings(**data)

    def declarations_unchanged(self, digest: str | None) -> bool:
        """The dialog was last saved with these declarations (the FC toggle must still be on)."""
        return digest is not None and digest == self._fc_digest

    def schema_unchanged(self, digest: str | None) -> bool:
        """The schema dialog was last saved with this schema (structured output must still be on)."""
        return digest is not None and digest == self._schema_digest

    def schema_known_empty(self) -> bool:
        """The structured-output dialog is known to hold no schema."""
        return self._schema_digest == NO_SCHEMA

    async def _read_float(self, loc: Locator) -> float | None:
        try:
            return float(await loc.input_value())
        except ValueError:
            return None

    async def _set_number(self, loc: Locator, value: float, tolerance: float, name: str) -> None:
        await loc.wait_for(state="visible", timeout=5_000)
        current = await self._read_float(loc)
        if current is not None and abs(current - value) <= tolerance:
            return
        await self._clear_obstacles()
        # repr of a float is exact enough for any tolerance; ints stay without ".0".
        text = str(int(value)) if tolerance >= 1 else repr(float(value))
        await loc.fill(text)
        after = await self._read_float(loc)
        if after is None or abs(after - value) > tolerance:
            await loc.dispatch_event("change")
            after = await self._read_float(loc)
        if after is None or abs(after - value) > tolerance:
            raise PageBroken(f"{name} did not take the value {value} (reads {after})")

    @translated
    async def set_temperature(self, value: float) -> None:
        await self._set_number(self.page.locator(S.TEMPERATURE_INPUT), min(max(value, 0.0), 2.0), 1e-3, "temperature")

    @translated
    async def set_top_p(self, value: float) -> None:
        await self._set_number(self.page.locator(S.TOP_P_INPUT), min(max(value, 0.0), 1.0), 1e-9, "top_p")

    @translated
    async def set_max_output_tokens(self, value: int) -> None:
        await self._set_number(self.page.locator(S.MAX_TOKENS_INPUT), int(value), 0.5, "max output tokens")

    async def _stop_chips(self) -> list[str]:
        labels = await self.page.locator(S.STOP_CHIP_REMOVE).evaluate_all(scripts.ARIA_LABELS)
        return [label.removeprefix(S.STOP_CHIP_LABEL_PREFIX).strip() for label in labels]

    @translated
    async def set_stop_sequences(self, wanted: list[str]) -> None:
        """Make the stop chips equal ``wanted`` as a set (docs/aistudio.md §3.3)."""
        target = {s.strip() for s in wanted if s and s.strip()}
        field = self.page.locator(S.STOP_INPUT)
        await field.wait_for(state="visible", timeout=5_000)
        chips = await self._stop_chips()
        for chip in chips:
            if chip not in target:
                remove = self.page.locator(S.STOP_CHIP_REMOVE_ONE.format(seq=_css_quote(chip)))
                count = len(await self._stop_chips())
                await remove.first.click()
                await expect(self.page.locator(S.STOP_CHIP_REMOVE)).to_have_count(count - 1, timeout=3_000)
        present = set(await self._stop_chips())
        if target - present:
            await self._clear_obstacles()
        for seq in sorted(target - present):
            count = len(await self._stop_chips())
            await field.fill(seq)
            await field.press("Enter")
            await expect(self.page.locator(S.STOP_CHIP_REMOVE)).to_have_count(count + 1, timeout=3_000)
        final = set(await self._stop_chips())
        if final != target:
            raise PageBroken(f"stop sequences read back as {sorted(final)}, wanted {sorted(target)}")

    @translated
    async def open_tools_group(self) -> bool:
        header = self.page.locator(S.TOOLS_GROUP_HEADER)
        if not await header.count():
            return False
        group = header.locator(S.TOOLS_GROUP_FROM_HEADER)
        classes = (await group.get_attribute("class")) or ""
        if S.GROUP_EXPANDED_CLASS not in classes.split():
            await self._clear_obstacles()
            await header.click()
            await expect(group).to_have_class(re.compile(rf"\b{S.GROUP_EXPANDED_CLASS}\b"), timeout=5_000)
        return True

    async def _switch_state(self, loc: Locator) -> bool:
        return (await loc.get_attribute("aria-checked")) == "true"

    async def _switch_disabled(self, loc: Locator) -> bool:
        if await loc.is_disabled():
            return True
        return S.SWITCH_DISABLED_CLASS in ((await loc.get_attribute("class")) or "")

    async def _set_switch(self, loc: Locator, want: bool, name: str, *, timeout_ms: float = 5_000) -> bool | None:
        """Set a ``role=switch`` control; None when it is absent, False when disabled and different."""
        if not await loc.count():
            return None
        await loc.wait_for(state="visible", timeout=timeout_ms)
        if await self._switch_state(loc) == want:
            return True
        if await self._switch_disabled(loc):
            log.info("%s is disabled; left %s", name, "off" if want else "on")
            return False
        await self._clear_obstacles()
        await loc.click()
        await expect(loc).to_have_attribute("aria-checked", "true" if want else "false", timeout=3_000)
        return True

    @translated
    async def set_url_context(self, want: bool) -> bool | None:
        return await self._set_switch(self.page.locator(S.URL_CONTEXT_TOGGLE), want, "URL context", timeout_ms=2_000)

    @translated
    async def set_google_search(self, want: bool) -> bool | None:
        return await self._set_switch(self.page.locator(S.SEARCH_TOGGLE), want, "Google Search")

    @translated
    async def apply_thinking(self, plan: Any) -> None:
        """Drive the thinking controls from a ``thinking.ThinkingPlan`` and read them back."""
        level = getattr(plan, "level", None)
        if level:
            await self._select_level(str(level))
            return
        main = getattr(plan, "main_toggle", None)
        if main is not None:
            state = await self._set_switch(self.page.locator(S.THINKING_MAIN_TOGGLE).first, bool(main), "thinking")
            if main is False or state is False:
                return
        manual = getattr(plan, "manual_budget", None)
        if manual is None:
            return
        manual_loc = self.page.locator(S.THINKING_MANUAL_TOGGLE).first
        if await self._set_switch(manual_loc, bool(manual), "manual thinking budget") is None:
            return
        budget = getattr(plan, "budget", None)
        if manual and budget:
            await self._set_budget(int(budget))

    async def _set_budget(self, budget: int) -> None:
        field = self.page.locator(S.THINKING_BUDGET_INPUT)
        await field.wait_for(state="visible", timeout=5_000)
        if await field.input_value() == str(budget):
            return
        page_max = await field.get_attribute("max")
        await field.evaluate(scripts.RAISE_BUDGET_MAX, [budget, S.THINKING_SLIDER_SCOPE, S.THINKING_SLIDER_RANGE])
        await field.fill(str(budget))
        try:
            await expect(field).to_have_value(str(budget), timeout=3_000)
        except AssertionError:
            if page_max and page_max.isdigit() and int(page_max) < budget:
                await field.fill(page_max)
                await expect(field).to_have_value(page_max, timeout=3_000)
            else:
                raise

    async def _select_level(self, level: str) -> None:
        trigger = self.page.locator(S.THINKING_LEVEL_SELECT).first
        if not await trigger.count():
            log.info("no thinking level select for this model")
            return
        value = trigger.locator(S.THINKING_LEVEL_VALUE)
        if (await value.inner_text()).strip().lower() == level.lower():
            return
        await self._clear_obstacles()
        await trigger.click()
        listbox = self.page.locator(S.THINKING_LEVEL_LISTBOX)
        option = listbox.locator(S.THINKING_LEVEL_OPTION).filter(
            has_text=re.compile(rf"^\s*{re.escape(level)}\s*$", re.I)
        )
        await option.first.click()
        try:
            await listbox.wait_for(state="hidden", timeout=2_000)
        except PlaywrightTimeout:
            await self.page.keyboard.press("Escape")
        await expect(value).to_have_text(re.compile(rf"^\s*{re.escape(level)}\s*$", re.I), timeout=3_000)

    # ------------------------------------------------------------------ function calling (docs/aistudio.md §2.7, §3.7)

    @translated
    async def set_function_declarations(self, declarations: list[dict[str, Any]] | None, digest: str | None) -> None:
        """No declarations: FC off. Otherwise FC on and the dialog saved, skipped when unchanged."""
        toggle = self.fc_toggle
        if not declarations:
            await self._set_switch(toggle, False, "function calling")
            return
        await self.set_google_search(False)
        await self.set_url_context(False)
        was_on = await toggle.count() and await self._switch_state(toggle)
        if was_on and digest is not None and digest == self._fc_digest:
            return
        if await self._set_switch(toggle, True, "function calling") is not True:
            raise PageBroken("the function calling toggle cannot be switched on")
        await self._clear_obstacles()
        await self.page.locator(S.FC_EDIT).first.click()
        dialog = self.page.locator(S.FC_DIALOG).or_(self.page.locator(S.FC_DIALOG_FALLBACK)).first
        await dialog.wait_for(state="visible", timeout=5_000)
        tab = dialog.locator(S.FC_CODE_TAB)
        if await tab.count() and await tab.first.get_attribute("aria-selected") != "true":
            await tab.first.click()
            await expect(tab.first).to_have_attribute("aria-selected", "true", timeout=3_000)
        area = dialog.locator(S.FC_TEXTAREA).first
        await area.wait_for(state="visible", timeout=5_000)
        await area.evaluate(scripts.SET_VALUE, json.dumps(declarations, indent=2, ensure_ascii=False))
        await dialog.locator(S.FC_SAVE).first.click()
        try:
            await dialog.wait_for(state="hidden", timeout=3_000)
        except PlaywrightTimeout:
            message = ""
            err = dialog.locator(S.FC_ERROR)
            if await err.count():
                message = (await err.first.inner_text()).strip()
            close = dialog.locator(S.FC_CLOSE)
            if await close.count():
                await close.first.click()
            await dialog.wait_for(state="hidden", timeout=3_000)
            self._fc_digest = None
            raise DeclarationsRejected(f"AI Studio rejected the function declarations: {message or 'dialog stayed open'}") from None
        self._fc_digest = digest

    @translated
    async def set_structured_output(
        self, enabled: bool, schema: dict[str, Any] | None, digest: str | None = None
    ) -> bool | None:
        """Structured output (JSON) on or off, with the response schema when given (docs/aistudio.md §2.6);
        ``digest`` (of the schema) is remembered once the dialog saved it (``schema_unchanged``).
        Without a schema the dialog is left as it is (``clear_response_schema`` empties it)."""
        toggle = self.page.locator(S.STRUCTURED_TOGGLE).first
        state = await self._set_switch(toggle, enabled, "structured output")
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
            err = dialog.locator(S.FC_ERROR)
            message = (await err.first.inner_text()).strip() if await err.count() else "dialog stayed open"
            await self._close_dialog(dialog)
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
        if self.schema_known_empty():
            return False
        toggle = self.page.locator(S.STRUCTURED_TOGGLE).first
        if await self._set_switch(toggle, True, "structured output") is not True:
            return False
        if not await self._saved_schema():
            self._schema_digest = NO_SCHEMA
            return False
        log.info("a response schema from an earlier request is saved on the page: resetting the run settings")
        self._schema_digest = None
        await self._clear_obstacles()
        await self.page.locator(S.RESET_SETTINGS).first.click()
        await expect(toggle).to_have_attribute("aria-checked", "false", timeout=3_000)
        await self._set_switch(toggle, True, "structured output")
        if await self._saved_schema():
            raise PageBroken("the saved response schema did not go away with Reset default settings")
        self._schema_digest = NO_SCHEMA
        return True

    async def _saved_schema(self) -> str:
        """The text of the schema the structured-output dialog holds ("" when none); the dialog is closed again."""
        dialog = await self._open_schema_dialog()
        text = (await dialog.locator(S.SCHEMA_TEXTAREA).first.input_value()).strip()
        await self._close_dialog(dialog)
        return text

    async def _open_schema_dialog(self) -> Locator:
        await self._clear_obstacles()
        await self.page.locator(S.STRUCTURED_EDIT).first.click()
        dialog = self.page.locator(S.SCHEMA_DIALOG).first
        await dialog.wait_for(state="visible", timeout=5_000)
        return dialog

    async def _close_dialog(self, dialog: Locator) -> None:
        close = dialog.locator(S.FC_CLOSE)
        if await close.count():
            await close.first.click()
        await dialog.wait_for(state="hidden", timeout=3_000)

    # ------------------------------------------------------------------ prompt, attachments, submit (docs/aistudio.md §2.2, §3.4)

    @translated
    async def fill_prompt(self, text: str) -> bool:
        """Set the prompt by script (value + bubbling input/change); a large prompt is never typed.

        Returns whether Run is enabled right after (``submit`` then skips its waits).
        """
        await self.textarea.wait_for(state="visible", timeout=10_000)
        return bool(await self.textarea.evaluate(scripts.FILL_PROMPT, [text, S.RUN_BUTTON, S.STOP_GENERATING]))

    @translated
    async def upload(self, paths: list[str]) -> None:
        """Attach files through the insert menu's upload item (file chooser or inner input)."""
        trigger = self.page.locator(S.UPLOAD_TRIGGER).first
        await self._clear_obstacles()
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
        await self.accept_dialogs()

    @translated
    async def accept_dialogs(self) -> None:
        """Click through post-upload / first-use dialogs in the overlay container (docs/aistudio.md §2.2)."""
        overlay = self.page.locator(S.OVERLAY_CONTAINER)
        for _ in range(3):
            clicked = False
            for text in S.DIALOG_ACCEPT_TEXTS:
                button = overlay.get_by_role(S.DIALOG_ACCEPT_ROLE, name=text, exact=True)
                if await button.count() and await button.first.is_visible():
                    clicked = await _click_if_still_there(button.first)
                    break
            if not clicked:
                ack = overlay.locator(S.DIALOG_ACK_BUTTON)
                if await ack.count() and await ack.first.is_visible():
                    clicked = await _click_if_still_there(ack.first)
            if not clicked:
                break

    async def _reject_cookie_banner(self) -> None:
        banner = self.page.locator(S.COOKIE_BANNER_REJECT)
        if await banner.count() and await banner.first.is_visible():
            await _click_if_still_there(banner.first)

    async def _clear_obstacles(self) -> None:
        """Cheap: only acts when a backdrop, tooltip, survey or banner is actually there."""
        if await self.page.evaluate(
            scripts.ANY_PRESENT,
            [S.BACKDROP_SHOWING, *S.TOOLTIP_SELECTORS, S.SURVEY_IFRAMES, S.COOKIE_BANNER_REJECT],
        ):
            await self.accept_dialogs()
            await self.dismiss_overlays()
            await self._reject_cookie_banner()

    @translated
    async def dismiss_overlays(self) -> None:
        """docs/aistudio.md §2.10: Escape stray backdrops, delete tooltips, remove survey iframes."""
        backdrop = self.page.locator(S.BACKDROP_SHOWING)
        for _ in range(3):
            if not await backdrop.count():
                break
            await self.page.keyboard.press("Escape")
            try:
                await backdrop.first.wait_for(state="detached", timeout=500)
            except PlaywrightTimeout:
                continue
        if await backdrop.count():
            # A backdrop that ignores Escape: remove it so it cannot swallow clicks.
            await self.page.evaluate(scripts.REMOVE, [[S.BACKDROP_SHOWING], S.OVERLAY_PANE, S.OVERLAY_PANE_KEEP])
        await self.page.mouse.move(0, 0)
        await self.page.evaluate(
            scripts.REMOVE, [[*S.TOOLTIP_SELECTORS, S.SURVEY_IFRAMES], S.OVERLAY_PANE, S.OVERLAY_PANE_KEEP]
        )

    @translated
    async def submit(self, run_enabled: bool = False) -> None:
        """Click Run (keyboard fallbacks: Enter, then Ctrl+Enter) and check that it took.

        ``run_enabled`` (what ``fill_prompt`` returned): Run is known to be enabled, so it is
        clicked by script in one round trip when no dialog, backdrop, tooltip or banner is in the
        way; otherwise (or when that click did not take) the careful path below runs.
        """
        if run_enabled:
            blockers = [S.BACKDROP_SHOWING, S.OVERLAY_MENU, S.DIALOG_SURFACE, *S.TOOLTIP_SELECTORS, S.SURVEY_IFRAMES, S.COOKIE_BANNER_REJECT]
            if await self.page.evaluate(scripts.CLICK_RUN, [S.RUN_BUTTON, S.STOP_GENERATING, blockers]):
                if await self._submitted():
                    return
                log.warning("the scripted run click did not take; trying the keyboard")
                await self._submit_by_keyboard()
                return
        await expect(self.run_button).to_be_enabled(timeout=10_000)
        await self.accept_dialogs()
        await self.dismiss_overlays()
        await self._reject_cookie_banner()
        try:
            await self.run_button.click(timeout=5_000)
            return
        except PlaywrightError as exc:
            log.warning("run click failed (%s); trying the keyboard", _first_line(exc))
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

    # ------------------------------------------------------------------ reading the answer (docs/aistudio.md §3.6)

    @translated
    async def dom_state(self) -> DomState:
        data = await self.page.evaluate(scripts.DOM_STATE, _SNAPSHOT_SELECTORS)
        return DomState(**data)

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
        selectors = _SNAPSHOT_SELECTORS if text else {**_SNAPSHOT_SELECTORS, "lite": True}
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

    @translated
    async def read_final_answer(self) -> tuple[str, str]:
        """The raw answer markdown: Edit (data-value), else Copy markdown, else the rendered text.

        Returns (text, method).
        """
        last = self.page.locator(S.LAST_TURN)
        try:
            text = await self._read_by_edit(last)
            return text, "edit"
        except (PlaywrightError, AssertionError) as exc:
            log.info("edit path failed: %s", _first_line(exc))
        try:
            text = await self._read_by_copy(last)
            return text, "copy"
        except (PlaywrightError, AssertionError) as exc:
            log.info("copy path failed: %s", _first_line(exc))
        fallback = self.page.locator(S.FINAL_RESPONSE).last
        return (await fallback.inner_text(timeout=5_000)), "dom"

    async def _read_by_edit(self, last: Locator) -> str:
        await last.hover(timeout=3_000)
        edit = last.locator(S.EDIT_BUTTON).first
        await edit.click(timeout=3_000)
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

    # ------------------------------------------------------------------ stop and clear (docs/aistudio.md §2.3, §2.8, §3.1.12)

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
        await self.dismiss_overlays()
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
    async def fresh_chat(self) -> str:
        """A new chat in a new document: empty the prompt box, load ``/prompts/new_chat``, wait until
        ready, temporary chat on. Returns the model the page shows.

        Unlike ``new_chat`` (which empties the chat inside the same document), everything the old
        document held becomes garbage: the rendered turns, the prompt box's value, whatever copies
        of the prompt the page's own script keeps. Costs a page load.
        """
        await self.page.evaluate(scripts.CLEAR_PROMPT, [S.PROMPT_TEXTAREA, S.CHAT_TURN])
        await self.open_new_chat(timeout_ms=30_000)
        model = await self.wait_ready()
        self._fc_digest = self._schema_digest = None  # a new document: no dialog is known to be set
        await self.ensure_temporary_chat()
        return model

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
            log.warning("garbage collection of the page failed: %s", _first_line(exc))
            return False
        return True

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

    @translated
    async def screenshot(self) -> bytes:
        return await self.page.screenshot(full_page=False, timeout=5_000)

    @translated
    async def html(self) -> str:
        return await self.page.content()


async def _click_if_still_there(loc: Locator) -> bool:
    """Click a transient control (a dialog button); False when it went away first."""
    try:
        await loc.click(timeout=2_000)
        return True
    except PlaywrightError as exc:
        log.info("transient control went away: %s", _first_line(exc))
        return False


def _css_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
