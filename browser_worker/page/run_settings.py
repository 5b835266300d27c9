"""The run settings panel: sampling numbers, stop sequences, the tools group, Google Search, URL
context and the thinking controls (docs/aistudio.md §2.6, §3.3)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from playwright.async_api import Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker import selectors as S
from browser_worker.errors import PageBroken
from browser_worker.mapping.thinking import ThinkingPlan
from browser_worker.page import scripts
from browser_worker.page.overlays import Overlays
from browser_worker.page.switch import Switch
from browser_worker.page.translate import translated

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """Every run setting a job may change, read in one round trip (``RunSettingsPanel.read``).

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


def _run_settings_selectors() -> dict[str, str]:
    """The selectors ``scripts.RUN_SETTINGS`` reads by name (read per call, so overrides apply)."""
    return {
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


class RunSettingsPanel:
    """Reads the panel in one round trip; each setter waits for the control to read the value back."""

    def __init__(self, page: Page, overlays: Overlays) -> None:
        self.page = page
        self.overlays = overlays
        self.url_context = Switch(
            page.locator(S.URL_CONTEXT_TOGGLE), "URL context", overlays, timeout_ms=2_000
        )
        self.google_search = Switch(page.locator(S.SEARCH_TOGGLE), "Google Search", overlays)
        self.thinking = Switch(page.locator(S.THINKING_MAIN_TOGGLE).first, "thinking", overlays)
        self.manual_budget = Switch(
            page.locator(S.THINKING_MANUAL_TOGGLE).first, "manual thinking budget", overlays
        )

    @translated
    async def read(self) -> RunSettings:
        """Every control the job compares against its request, in one ``evaluate`` (setters still read back)."""
        data = await self.page.evaluate(scripts.RUN_SETTINGS, _run_settings_selectors())
        data["stops"] = tuple(data["stops"])
        return RunSettings(**data)

    # ------------------------------------------------------------------ numbers

    @translated
    async def set_temperature(self, value: float) -> None:
        await self._set_number(
            self.page.locator(S.TEMPERATURE_INPUT), min(max(value, 0.0), 2.0), 1e-3, "temperature"
        )

    @translated
    async def set_top_p(self, value: float) -> None:
        await self._set_number(self.page.locator(S.TOP_P_INPUT), min(max(value, 0.0), 1.0), 1e-9, "top_p")

    @translated
    async def set_max_output_tokens(self, value: int) -> None:
        await self._set_number(self.page.locator(S.MAX_TOKENS_INPUT), int(value), 0.5, "max output tokens")

    async def _set_number(self, loc: Locator, value: float, tolerance: float, name: str) -> None:
        await loc.wait_for(state="visible", timeout=5_000)
        current = await _read_float(loc)
        if current is not None and abs(current - value) <= tolerance:
            return
        await self.overlays.clear()
        # repr of a float is exact enough for any tolerance; ints stay without ".0".
        text = str(int(value)) if tolerance >= 1 else repr(float(value))
        await loc.fill(text)
        after = await _read_float(loc)
        if after is None or abs(after - value) > tolerance:
            await loc.dispatch_event("change")
            after = await _read_float(loc)
        if after is None or abs(after - value) > tolerance:
            raise PageBroken(f"{name} did not take the value {value} (reads {after})")

    # ------------------------------------------------------------------ stop sequences

    @translated
    async def set_stop_sequences(self, wanted: list[str]) -> None:
        """Make the stop chips equal ``wanted`` as a set (docs/aistudio.md §3.3)."""
        target = {s.strip() for s in wanted if s and s.strip()}
        field = self.page.locator(S.STOP_INPUT)
        chips = self.page.locator(S.STOP_CHIP_REMOVE)
        await field.wait_for(state="visible", timeout=5_000)
        # By position, never by a selector spelled from the chip's text: a client's stop sequence
        # may hold characters (a NUL) that no CSS attribute selector can match.
        while True:
            present_chips = await self._stop_chips()
            extra = next((i for i, chip in enumerate(present_chips) if chip not in target), None)
            if extra is None:
                break
            await chips.nth(extra).click()
            await expect(chips).to_have_count(len(present_chips) - 1, timeout=3_000)
        present = set(await self._stop_chips())
        if target - present:
            await self.overlays.clear()
        for seq in sorted(target - present):
            count = len(await self._stop_chips())
            await field.fill(seq)
            await field.press("Enter")
            await expect(chips).to_have_count(count + 1, timeout=3_000)
        final = set(await self._stop_chips())
        if final != target:
            raise PageBroken(f"stop sequences read back as {sorted(final)}, wanted {sorted(target)}")

    async def _stop_chips(self) -> list[str]:
        labels = await self.page.locator(S.STOP_CHIP_REMOVE).evaluate_all(scripts.ARIA_LABELS)
        return [label.removeprefix(S.STOP_CHIP_LABEL_PREFIX).strip() for label in labels]

    # ------------------------------------------------------------------ tools group and its switches

    @translated
    async def open_tools_group(self) -> bool:
        header = self.page.locator(S.TOOLS_GROUP_HEADER)
        if not await header.count():
            return False
        group = header.locator(S.TOOLS_GROUP_FROM_HEADER)
        classes = (await group.get_attribute("class")) or ""
        if S.GROUP_EXPANDED_CLASS not in classes.split():
            await self.overlays.clear()
            await header.click()
            await expect(group).to_have_class(re.compile(rf"\b{S.GROUP_EXPANDED_CLASS}\b"), timeout=5_000)
        return True

    @translated
    async def set_url_context(self, want: bool) -> bool | None:
        return await self.url_context.set(want)

    @translated
    async def set_google_search(self, want: bool) -> bool | None:
        return await self.google_search.set(want)

    # ------------------------------------------------------------------ thinking

    @translated
    async def apply_thinking(self, plan: ThinkingPlan) -> None:
        """Drive the thinking controls to the plan and read them back."""
        if plan.level:
            await self._select_level(plan.level)
            return
        if plan.main_toggle is not None:
            state = await self.thinking.set(plan.main_toggle)
            if plan.main_toggle is False or state is False:
                return
        if plan.manual_budget is None:
            return
        if await self.manual_budget.set(plan.manual_budget) is None:
            return
        if plan.manual_budget and plan.budget:
            await self._set_budget(plan.budget)

    async def _set_budget(self, budget: int) -> None:
        field = self.page.locator(S.THINKING_BUDGET_INPUT)
        await field.wait_for(state="visible", timeout=5_000)
        if await field.input_value() == str(budget):
            return
        page_max = await field.get_attribute("max")
        await field.evaluate(
            scripts.RAISE_BUDGET_MAX, [budget, S.THINKING_SLIDER_SCOPE, S.THINKING_SLIDER_RANGE]
        )
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
        exactly = re.compile(rf"^\s*{re.escape(level)}\s*$", re.I)
        await self.overlays.clear()
        await trigger.click()
        listbox = self.page.locator(S.THINKING_LEVEL_LISTBOX)
        await listbox.locator(S.THINKING_LEVEL_OPTION).filter(has_text=exactly).first.click()
        try:
            await listbox.wait_for(state="hidden", timeout=2_000)
        except PlaywrightTimeout:
            await self.page.keyboard.press("Escape")
        await expect(value).to_have_text(exactly, timeout=3_000)


async def _read_float(loc: Locator) -> float | None:
    try:
        return float(await loc.input_value())
    except ValueError:
        return None
