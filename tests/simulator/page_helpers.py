"""Helpers for driving the simulator page with Playwright in the page conformance tests: selectors from
docs/aistudio.md §2, a signed-in browser context with chosen preferences, and small page intents."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.simulator.conftest import SimProcess

STUDIO = "https://aistudio.google.com"
NEW_CHAT = f"{STUDIO}/prompts/new_chat"
PREF_KEY = "aiStudioUserPreference"
VIEWPORT = {"width": 1440, "height": 900}

# docs/aistudio.md §2.2: the whole prompt-textarea selector list (one selector, comma-separated).
PROMPT_TEXTAREA = ", ".join(
    [
        "textarea.textarea",
        "ms-autosize-textarea textarea",
        "ms-chunk-input textarea",
        "ms-prompt-input-wrapper ms-autosize-textarea textarea",
        'ms-prompt-input-wrapper textarea[aria-label*="prompt" i]',
        "ms-prompt-input-wrapper textarea",
        "ms-prompt-box ms-autosize-textarea textarea",
        'ms-prompt-box textarea[aria-label="Enter a prompt"]',
        "ms-prompt-box textarea",
    ]
)
RUN_BUTTON = 'ms-run-button button[type="submit"].ms-button-primary'
STOP_GENERATING = 'button[aria-label="Stop generating"]'
MODEL_NAME = '[data-test-id="model-name"]'
LAST_TURN = "ms-chat-turn:last-child"
EDIT_BUTTON = f"{LAST_TURN} .actions-container button.toggle-edit-button"
MODEL_CONTAINER = "ms-chat-turn .chat-turn-container.model"
OVERLAY = "div.cdk-overlay-container"
TEMPERATURE = 'ms-slider input[type="number"][max="2"]'
TOP_P = 'ms-slider input[type="number"][max="1"]'
MAX_TOKENS = 'input[aria-label="Maximum output tokens"]'
STOP_INPUT = 'input[aria-label="Add stop token"]'
TOOLS_HEADER = 'button[aria-label="Expand or collapse tools"]'
ADVANCED_HEADER = 'button[aria-label="Expand or collapse advanced settings"]'
THINKING_TOGGLE = 'button[role="switch"][aria-label="Toggle thinking mode"]'
MANUAL_BUDGET = 'button[role="switch"][aria-label="Toggle thinking budget between auto and manual"]'
BUDGET_INPUT = '[data-test-id="user-setting-budget-animation-wrapper"] input[type="number"]'
LEVEL_SELECT = '[role="combobox"][aria-label="Thinking Level"]'
LEVEL_VALUE = f"{LEVEL_SELECT} .mat-mdc-select-value-text .mat-mdc-select-min-line"
LEVEL_OPTIONS = '[role="listbox"][aria-label="Thinking Level"] [role="option"]'
FC_TOGGLE = '[data-test-id="functionCallingTooltip"] mat-slide-toggle button[role="switch"].mdc-switch'
FC_EDIT = 'button.edit-function-declarations-button[aria-label="Edit function declarations"]'
FC_DIALOG = 'mat-dialog-container:has(h2:has-text("Function declarations"))'
SEARCH_TOGGLE = 'div[data-test-id="searchAsAToolTooltip"] mat-slide-toggle button'
URL_CONTEXT = 'button[aria-label="Browse the url context"]'
NEW_CHAT_BUTTON = 'button[data-test-clear="outside"][aria-label="New chat"]'
MORE_ACTIONS = 'button[aria-label="View more actions"]'
INCOGNITO_TOGGLE = "button[data-test-incognito-toggle]"
QUOTA_CALLOUT = "ms-callout.error-callout .message"
ERROR_TOAST = "div.toast.error span.content-text"
UPLOAD_BUTTON = 'button[data-test-id="add-media-button"]'

OPEN_PREFS = {"isAdvancedOpen": True, "areToolsOpen": True, "fileCopyrightAcknowledged": True}


# Seeds the preference string on the first document of a tab only (sessionStorage is per tab), so
# reloads in the same tab see whatever the page or the test wrote since. Called with [origin, key, value].
SEED_PREFS = """([origin, key, value]) => {
    if (location.origin !== origin || sessionStorage.getItem("__seeded_prefs")) return;
    sessionStorage.setItem("__seeded_prefs", "1");
    if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value);
}"""


async def new_context(browser: Browser) -> BrowserContext:
    context = await browser.new_context(ignore_https_errors=True, viewport=VIEWPORT)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=STUDIO)
    context.set_default_timeout(10_000)
    return context


async def open_studio(context: BrowserContext, prefs: dict | None, url: str = NEW_CHAT) -> Page:
    """A new tab on the studio with `prefs` as aiStudioUserPreference (None: key missing)."""
    page = await context.new_page()
    value = None if prefs is None else json.dumps(prefs)
    await page.add_init_script(f"({SEED_PREFS})({json.dumps([STUDIO, PREF_KEY, value])})")
    await page.goto(url)
    await expect(page.locator(PROMPT_TEXTAREA)).to_be_visible()
    await expect(page.locator(MODEL_NAME).first).not_to_have_text("")
    return page


async def read_prefs(page: Page) -> Any:
    raw = await page.evaluate("key => localStorage.getItem(key)", PREF_KEY)
    assert isinstance(raw, str)
    return json.loads(raw)


async def set_prompt_by_script(page: Page, text: str) -> None:
    """The client's way (docs/aistudio.md §3.4): set .value, then dispatch bubbling input and change."""
    await page.locator(PROMPT_TEXTAREA).evaluate(
        """(el, text) => {
            el.value = text;
            el.dispatchEvent(new Event("input", {bubbles: true}));
            el.dispatchEvent(new Event("change", {bubbles: true}));
        }""",
        text,
    )


async def run_prompt(page: Page, text: str) -> None:
    await set_prompt_by_script(page, text)
    await page.locator(RUN_BUTTON).click()


async def wait_until_done(page: Page) -> None:
    await expect(page.locator(EDIT_BUTTON)).to_be_visible()
    await expect(page.locator(STOP_GENERATING)).to_have_count(0)


async def run_and_wait(page: Page, text: str) -> None:
    await run_prompt(page, text)
    await wait_until_done(page)


async def set_toggle(page: Page, selector: str, on: bool) -> None:
    toggle = page.locator(selector)
    if (await toggle.get_attribute("aria-checked")) != ("true" if on else "false"):
        await toggle.click()
    await expect(toggle).to_have_attribute("aria-checked", "true" if on else "false")


async def save_declarations(page: Page, declarations: list[dict]) -> None:
    await set_toggle(page, FC_TOGGLE, True)
    await page.locator(FC_EDIT).click()
    dialog = page.locator(FC_DIALOG)
    await expect(dialog).to_be_visible()
    await dialog.locator("ms-text-editor textarea").fill(json.dumps(declarations, indent=2))
    await dialog.locator('button[aria-label="Save the current function declarations"]').click()
    await expect(dialog).to_have_count(0)


def last_request(sim: SimProcess) -> dict:
    return sim.inspect("requests/last")


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll simulator-side state (not the page) until `check()` holds; False after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
