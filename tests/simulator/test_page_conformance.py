"""The simulator page against docs/aistudio.md §10.1, driven the way the client drives the real site (docs/aistudio.md §2-§3):
Debian Chromium through Playwright, the real host names mapped to one simulator per module."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.requirements import skip_unless
from tests.simulator.conftest import SimProcess, start_simulator
from tests.simulator.page_helpers import (
    ADVANCED_HEADER,
    BUDGET_INPUT,
    EDIT_BUTTON,
    ERROR_TOAST,
    FC_DIALOG,
    FC_EDIT,
    FC_TOGGLE,
    INCOGNITO_TOGGLE,
    LAST_TURN,
    LEVEL_OPTIONS,
    LEVEL_SELECT,
    LEVEL_VALUE,
    MANUAL_BUDGET,
    MAX_TOKENS,
    MODEL_CONTAINER,
    MODEL_NAME,
    MORE_ACTIONS,
    NEW_CHAT,
    NEW_CHAT_BUTTON,
    OPEN_PREFS,
    OVERLAY,
    PROMPT_TEXTAREA,
    QUOTA_CALLOUT,
    RUN_BUTTON,
    SEARCH_TOGGLE,
    STOP_GENERATING,
    STOP_INPUT,
    STUDIO,
    TEMPERATURE,
    THINKING_TOGGLE,
    TOOLS_HEADER,
    TOP_P,
    UPLOAD_BUTTON,
    URL_CONTEXT,
    VIEWPORT,
    eventually,
    last_request,
    new_context,
    open_studio,
    read_prefs,
    run_and_wait,
    run_prompt,
    save_declarations,
    set_prompt_by_script,
    set_toggle,
    wait_until_done,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = Path("/usr/bin/chromium")
DEMO_EMAIL, DEMO_PASSWORD = "demo@example.com", "demo"
ANSWER = f"{MODEL_CONTAINER} ms-prompt-chunk.text-chunk > ms-text-chunk > ms-cmark-node.cmark-node"
LIST_MODELS_URL = re.compile(r"/\$rpc/.*\.MakerSuiteService/ListModels$")
GENERATE_URL = re.compile(r"/\$rpc/.*\.MakerSuiteService/GenerateContent$")
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


# ---- fixtures: one simulator and one browser per module, a fresh context per test ----


@pytest.fixture(scope="module")
def page_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    with start_simulator(tmp_path_factory.mktemp("page-sim") / "state") as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(page_sim: SimProcess) -> AsyncIterator[Browser]:
    skip_unless(CHROMIUM.exists(), str(CHROMIUM))
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[f"--host-resolver-rules={page_sim.host_resolver_rules}"],
        )
        yield launched
        await launched.close()


async def sign_in(page: Page) -> None:
    await page.locator('input[type="email"][name="email"]').fill(DEMO_EMAIL)
    await page.locator('input[type="password"][name="password"]').fill(DEMO_PASSWORD)
    await page.locator('button[type="submit"]').click()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """One context per module, signed in once through the login page; each test opens its own page."""
    ctx = await new_context(browser)
    page = await ctx.new_page()
    await page.goto(NEW_CHAT)
    await sign_in(page)
    await page.wait_for_url(NEW_CHAT)
    await page.close()
    yield ctx
    await page.close()


@pytest.fixture
def sim(page_sim: SimProcess) -> SimProcess:
    page_sim.reset()
    return page_sim


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext, sim: SimProcess) -> AsyncIterator[Page]:
    opened = await open_studio(context, OPEN_PREFS)
    yield opened
    await opened.close()


async def studio_with(context: BrowserContext, prefs: dict | None) -> Page:
    return await open_studio(context, prefs)


# ---- docs/aistudio.md §10.1, one test per item ----


async def test_new_chat_loads_with_one_prompt_textarea_and_the_model_id(page: Page) -> None:
    await expect(page.locator("ms-chunk-editor")).to_be_visible()
    await expect(page.locator(PROMPT_TEXTAREA)).to_have_count(1)
    await expect(page.locator(PROMPT_TEXTAREA)).to_have_attribute("aria-label", "Enter a prompt")
    assert (await page.locator(MODEL_NAME).first.inner_text()).strip() == "gemini-2.5-pro"
    await expect(
        page.locator("ms-right-side-panel > div.content-container > ms-run-settings.expanded")
    ).to_be_visible()
    await expect(page.locator(f"{OVERLAY} > *")).to_have_count(0)


async def test_logged_out_request_redirects_to_accounts_and_sign_in_returns(
    browser: Browser, sim: SimProcess
) -> None:
    context = await browser.new_context(ignore_https_errors=True)
    page = await context.new_page()
    await page.goto(NEW_CHAT)
    assert "accounts.google.com" in page.url
    await page.locator('input[name="email"]').fill(DEMO_EMAIL)
    await page.locator('input[name="password"]').fill("wrong")
    await page.locator('button[type="submit"]').click()
    await expect(page.locator("#signin-error")).to_be_visible()
    await sign_in(page)
    await page.wait_for_url(NEW_CHAT)
    await expect(page.locator(PROMPT_TEXTAREA)).to_be_visible()
    await context.close()


async def test_unauthenticated_list_models_sends_the_page_to_sign_in(context: BrowserContext) -> None:
    page = await context.new_page()
    await page.route(
        LIST_MODELS_URL,
        lambda route: route.fulfill(
            status=401,
            body='[16,"Request had invalid authentication credentials."]',
            headers={"Access-Control-Allow-Origin": STUDIO, "Access-Control-Allow-Credentials": "true"},
        ),
    )
    await page.goto(NEW_CHAT)
    await page.wait_for_url(re.compile(r"^https://accounts\.google\.com/v3/signin/identifier\?continue="))
    assert "continue=https%3A%2F%2Faistudio.google.com%2Fprompts%2Fnew_chat" in page.url
    await page.close()


async def test_preferences_are_read_at_boot_and_stay_one_json_string(
    context: BrowserContext, sim: SimProcess
) -> None:
    page = await studio_with(context, None)
    prefs = await read_prefs(page)
    assert prefs["promptModel"] == "models/gemini-2.5-pro"
    assert prefs["isAdvancedOpen"] is False and prefs["areToolsOpen"] is False
    await expect(page.locator(MAX_TOKENS)).to_have_count(0)
    assert "expanded" not in (await page.locator(TOOLS_HEADER).locator("xpath=../..").get_attribute("class"))

    prefs.update(promptModel="models/gemini-2.5-flash", isAdvancedOpen=True, areToolsOpen=True)
    await page.evaluate("p => localStorage.setItem('aiStudioUserPreference', JSON.stringify(p))", prefs)
    await page.goto(NEW_CHAT)
    await expect(page.locator(MODEL_NAME).first).to_have_text("gemini-2.5-flash")
    await expect(page.locator(MAX_TOKENS)).to_be_visible()
    await expect(page.locator(TOOLS_HEADER).locator("xpath=../..")).to_have_class(re.compile(r"\bexpanded\b"))

    prefs.update(promptModel="models/no-such-model")
    await page.evaluate("p => localStorage.setItem('aiStudioUserPreference', JSON.stringify(p))", prefs)
    await page.goto(NEW_CHAT)
    await expect(page.locator(MODEL_NAME).first).to_have_text("gemini-2.5-pro")
    rewritten = await read_prefs(page)
    assert rewritten["promptModel"] == "models/gemini-2.5-pro"
    assert rewritten["isAdvancedOpen"] is True
    await page.close()


async def test_a_listed_model_the_page_refuses_falls_back_and_rewrites_the_preference(
    context: BrowserContext, sim: SimProcess
) -> None:
    """Config page_unknown_models (docs/aistudio.md §8): ListModels still lists the model, but the page boots on the
    default model and rewrites promptModel, keeping the other preferences."""
    sim.config(page_unknown_models=["gemini-2.5-flash"])
    prefs = dict(OPEN_PREFS, promptModel="models/gemini-2.5-flash")
    page = await studio_with(context, prefs)
    await expect(page.locator(MODEL_NAME).first).to_have_text("gemini-2.5-pro")
    assert await read_prefs(page) == dict(prefs, promptModel="models/gemini-2.5-pro")

    await page.evaluate("p => localStorage.setItem('aiStudioUserPreference', JSON.stringify(p))", prefs)
    async with page.expect_response(LIST_MODELS_URL) as response_info:
        await page.goto(NEW_CHAT)
    assert "models/gemini-2.5-flash" in [m[0] for m in (await (await response_info.value).json())[0]]
    await expect(page.locator(MODEL_NAME).first).to_have_text("gemini-2.5-pro")
    assert (await read_prefs(page))["promptModel"] == "models/gemini-2.5-pro"

    sim.config(page_unknown_models=[])
    await page.evaluate("p => localStorage.setItem('aiStudioUserPreference', JSON.stringify(p))", prefs)
    await page.goto(NEW_CHAT)
    await expect(page.locator(MODEL_NAME).first).to_have_text("gemini-2.5-flash")
    assert (await read_prefs(page))["promptModel"] == "models/gemini-2.5-flash"
    await page.close()


async def test_script_set_prompt_drives_the_run_button(page: Page) -> None:
    run = page.locator(RUN_BUTTON)
    wrapper = page.locator("ms-prompt-box ms-autosize-textarea")
    await expect(run).to_be_disabled()
    await expect(run).to_have_attribute("aria-disabled", "true")
    await expect(wrapper).to_have_class(re.compile(r"\bempty\b"))
    await set_prompt_by_script(page, "Hello there")
    await expect(run).to_be_enabled()
    await expect(run).to_have_attribute("aria-label", "Run")
    await expect(wrapper).to_have_attribute("data-value", "Hello there")
    await expect(wrapper).not_to_have_class(re.compile(r"\bempty\b"))
    await set_prompt_by_script(page, "")
    await expect(run).to_be_disabled()
    await page.locator(PROMPT_TEXTAREA).fill("typed with fill")
    await expect(run).to_be_enabled()


async def test_run_clears_the_prompt_and_the_same_button_becomes_stop(page: Page) -> None:
    await run_prompt(page, "#sim:delay_ms=150 #sim:words=30")
    await expect(page.locator(PROMPT_TEXTAREA)).to_have_value("")
    await expect(page.locator(STOP_GENERATING)).to_be_visible()
    await expect(page.locator(RUN_BUTTON)).to_have_count(1)
    await expect(page.locator(RUN_BUTTON)).to_be_enabled()
    await expect(page.locator(RUN_BUTTON)).to_have_text("Stop")
    await expect(page.locator("ms-chat-turn .chat-turn-container.user")).to_have_count(1)
    await expect(page.locator(MODEL_CONTAINER)).to_have_count(1)
    await expect(page.locator(f"{LAST_TURN} button.toggle-edit-button")).to_have_count(0)
    await wait_until_done(page)


async def test_finished_turn_is_last_child_with_edit_and_run_disabled(page: Page) -> None:
    await run_and_wait(page, "Say hello")
    await expect(page.locator(RUN_BUTTON)).to_be_disabled()
    await expect(page.locator(RUN_BUTTON)).to_have_attribute("aria-label", "Run")
    await expect(page.locator(STOP_GENERATING)).to_have_count(0)
    await expect(page.locator(f"{LAST_TURN} .chat-turn-container.model")).to_have_count(1)
    await expect(page.locator(EDIT_BUTTON)).to_have_attribute("aria-label", "Edit")
    await expect(page.locator(f"{LAST_TURN} span.model-run-time-pill")).to_have_text(
        re.compile(r"^\d+\.\ds$")
    )
    actions = page.locator(f"{LAST_TURN} .actions.hover-or-edit")
    assert await actions.evaluate("el => getComputedStyle(el).display") != "none"


async def test_edit_mode_shows_the_raw_answer_and_stop_editing_restores(page: Page) -> None:
    prompt = "# Title\n\nSome **bold** and `code`.\n\n```py\nprint(1)\n```\n- a\n- b #sim:echo"
    await run_and_wait(page, prompt)
    await expect(page.locator(f"{LAST_TURN} pre code")).to_have_text("print(1)")
    await page.locator(LAST_TURN).hover()
    await page.locator(EDIT_BUTTON).click()
    editor = page.locator(f"{LAST_TURN} ms-autosize-textarea")
    await expect(editor).to_have_attribute("data-value", prompt)
    await expect(editor.locator("textarea")).to_have_value(prompt)
    await page.locator(f'{LAST_TURN} button.toggle-edit-button[aria-label="Stop editing"]').click()
    await expect(page.locator(f"{LAST_TURN} ms-autosize-textarea")).to_have_count(0)
    await expect(page.locator(EDIT_BUTTON)).to_have_attribute("aria-label", "Edit")
    await expect(page.locator(f"{LAST_TURN} ms-cmark-node.cmark-node strong")).to_have_text("bold")
    await expect(page.locator(PROMPT_TEXTAREA)).to_have_count(1)


async def test_copy_markdown_is_the_fourth_option_and_equals_the_edit_text(page: Page) -> None:
    await run_and_wait(page, "Copy me, **please**. #sim:words=6")
    await page.locator(LAST_TURN).hover()
    await page.locator(LAST_TURN).get_by_label("Open options").click()
    menu = page.locator(f'{OVERLAY} div[role="menu"]')
    await expect(menu.locator("button.mat-mdc-menu-item:nth-child(4)")).to_have_text("Copy markdown")
    await page.get_by_role("menuitem", name="Copy markdown").click(force=True)
    await expect(menu).to_have_count(0)
    copied = await page.evaluate("navigator.clipboard.readText()")
    await page.locator(EDIT_BUTTON).click()
    edit_text = await page.locator(f"{LAST_TURN} ms-autosize-textarea").get_attribute("data-value")
    assert copied == edit_text
    assert copied.endswith(".") and len(copied.split()) == 6


async def test_generate_content_goes_to_the_rpc_host_and_renders_event_by_event(
    page: Page, sim: SimProcess
) -> None:
    async with page.expect_request(GENERATE_URL) as request_info:
        await run_prompt(page, "#sim:delay_ms=300 #sim:chunks=4 #sim:words=16")
    request = await request_info.value
    assert request.url == (
        "https://alkalimakersuite-pa.clients6.google.com/$rpc/google.internal.alkali."
        "applications.makersuite.v1.MakerSuiteService/GenerateContent"
    )
    assert request.headers["content-type"] == "application/json+protobuf"
    body = json.loads(request.post_data or "")
    assert body[0] == "models/gemini-2.5-pro" and body[1][0][1] == "user" and body[4].startswith("!")
    answer = page.locator(ANSWER)
    await expect(answer).not_to_have_text("")
    partial = await answer.inner_text()
    assert await page.locator(STOP_GENERATING).is_visible(), "text must show while the stream is still open"
    await wait_until_done(page)
    final = (await answer.inner_text()).strip()
    assert len(partial.strip()) < len(final)
    assert final == last_request(sim)["response"]["answer_text"].strip()


async def test_list_models_is_requested_on_every_load(context: BrowserContext, sim: SimProcess) -> None:
    page = await context.new_page()
    for _ in range(2):
        async with page.expect_response(LIST_MODELS_URL) as response_info:
            await page.goto(NEW_CHAT)
        response = await response_info.value
        assert response.ok
        models = await response.json()
        assert ["models/gemini-2.5-pro" == m[0] for m in models[0]].count(True) == 1
    events = [e for e in sim.inspect("events") if e["kind"] == "list_models"]
    assert len(events) == 2
    await page.close()


RUN_SETTINGS_UNIQUE = [
    TEMPERATURE,
    'ms-slider input.slider-number-input[aria-valuemax="2"]',
    TOP_P,
    'ms-slider input.slider-number-input[aria-valuemax="1"]',
    MAX_TOKENS,
    STOP_INPUT,
    TOOLS_HEADER,
    ADVANCED_HEADER,
    MANUAL_BUDGET,
    '[data-test-id="functionCallingTooltip"]',
    FC_TOGGLE,
    FC_EDIT,
    SEARCH_TOGGLE,
    URL_CONTEXT,
    '[data-test-id="structuredOutputTooltip"] button[role="switch"][aria-label="Structured output"]',
    'button[aria-label="Edit JSON schema"]',
    "ms-token-count",
    "ms-model-selector",
    NEW_CHAT_BUTTON,
    'button[aria-label="New chat"]',
    MORE_ACTIONS,
    RUN_BUTTON,
    UPLOAD_BUTTON,
    PROMPT_TEXTAREA,
]


async def test_run_settings_controls_are_unique_and_reflect_state(page: Page) -> None:
    for selector in RUN_SETTINGS_UNIQUE:
        await expect(page.locator(selector), selector).to_have_count(1)
    temperature = page.locator(TEMPERATURE)
    await expect(temperature).to_have_attribute("min", "0")
    await expect(temperature).to_have_attribute("step", "0.05")
    await temperature.fill("0.35")
    await expect(temperature).to_have_value("0.35")
    await expect(page.locator(MAX_TOKENS)).to_have_value("65536")
    await expect(page.locator(MAX_TOKENS)).to_have_attribute("max", "65536")
    await page.locator(MAX_TOKENS).fill("1234")
    await expect(page.locator(MAX_TOKENS)).to_have_value("1234")
    await expect(page.locator(TOOLS_HEADER).locator("xpath=../..")).to_have_class(
        re.compile(r"\bsettings-item\b.*\bsettings-group-header\b.*\bexpanded\b")
    )
    await expect(page.locator(URL_CONTEXT)).to_have_attribute("aria-checked", "false")
    checked = await page.locator(URL_CONTEXT).evaluate(
        "el => { el.click(); return el.getAttribute('aria-checked'); }"
    )
    assert checked == "true", "aria-checked must change inside the click handler"
    await expect(page.locator(URL_CONTEXT)).to_have_class(re.compile(r"\bmdc-switch--selected\b"))
    await page.locator(ADVANCED_HEADER).click()
    await expect(page.locator(MAX_TOKENS)).to_have_count(0)
    assert (await read_prefs(page))["isAdvancedOpen"] is False
    await page.locator(TOOLS_HEADER).click()
    await expect(page.locator(TOOLS_HEADER).locator("xpath=../..")).not_to_have_class(
        re.compile(r"\bexpanded\b")
    )


FAMILIES = [
    # model, main toggle, manual toggle, level options
    ("gemini-2.5-pro", 0, 1, []),
    ("gemini-2.5-flash", 1, 1, []),
    ("gemini-3-pro-preview", 0, 0, ["Low", "High"]),
    ("gemini-3-flash-preview", 0, 0, ["Minimal", "Low", "Medium", "High"]),
    ("gemini-2.0-flash", 0, 0, []),
    ("gemma-3-27b-it", 0, 0, []),
]


@pytest.mark.parametrize(("model", "main", "manual", "levels"), FAMILIES, ids=[f[0] for f in FAMILIES])
async def test_thinking_controls_follow_the_model_family(
    context: BrowserContext, sim: SimProcess, model: str, main: int, manual: int, levels: list[str]
) -> None:
    page = await studio_with(context, dict(OPEN_PREFS, promptModel=f"models/{model}"))
    await expect(page.locator(MODEL_NAME).first).to_have_text(model)
    await expect(page.locator(THINKING_TOGGLE)).to_have_count(main)
    await expect(page.locator(MANUAL_BUDGET)).to_have_count(manual)
    await expect(page.locator(LEVEL_SELECT)).to_have_count(1 if levels else 0)
    await expect(page.locator(SEARCH_TOGGLE)).to_have_count(0 if model.startswith("gemini-2.0") else 1)
    if manual:
        await expect(page.locator(BUDGET_INPUT)).to_have_count(0)
        await page.locator(MANUAL_BUDGET).click()
        budget = page.locator(BUDGET_INPUT)
        await expect(budget).to_have_attribute("max", "32768" if "pro" in model else "24576")
        slider = budget.locator("xpath=ancestor::*[@data-test-slider][1]")
        await expect(slider.locator('input[type="range"]')).to_have_count(1)
    if main:
        await page.locator(THINKING_TOGGLE).click()
        await expect(page.locator(MANUAL_BUDGET)).to_have_count(0)
    if levels:
        await expect(page.locator(LEVEL_VALUE)).to_have_text("High")
        await page.locator(LEVEL_SELECT).click()
        await expect(page.locator(LEVEL_OPTIONS)).to_have_text(levels)
        await page.keyboard.press("Escape")
        await expect(page.locator(LEVEL_OPTIONS)).to_have_count(0)
        await page.locator(LEVEL_SELECT).click()
        await page.locator(f'{LEVEL_OPTIONS}:has-text("Low")').click()
        await expect(page.locator('[role="listbox"][aria-label="Thinking Level"]')).to_have_count(0)
        await expect(page.locator(LEVEL_VALUE)).to_have_text("Low")
    await expect(page.locator(f"{OVERLAY} > *")).to_have_count(0)
    await page.close()


async def test_stop_sequence_chips_are_added_with_enter_and_removed(page: Page) -> None:
    stop_input = page.locator(STOP_INPUT)
    for seq in ("User:", "END"):
        await stop_input.fill(seq)
        await stop_input.press("Enter")
    chips = page.locator('mat-chip button.remove-button[aria-label*="Remove"]')
    await expect(chips).to_have_count(2)
    labels = [await chip.get_attribute("aria-label") for chip in await chips.all()]
    assert {label.removeprefix("Remove ").strip() for label in labels} == {"User:", "END"}
    await expect(stop_input).to_have_value("")
    await page.locator('mat-chip button.remove-button[aria-label="Remove User:"]').click()
    await expect(chips).to_have_count(1)
    await expect(page.locator('mat-chip button.remove-button[aria-label="Remove END"]')).to_have_count(1)


async def test_function_declarations_dialog_and_a_native_call(page: Page, sim: SimProcess) -> None:
    await expect(page.locator(FC_EDIT)).to_be_disabled()
    await set_toggle(page, FC_TOGGLE, True)
    await expect(page.locator(FC_EDIT)).to_be_enabled()
    await expect(page.locator(SEARCH_TOGGLE)).to_be_disabled()
    await expect(page.locator(URL_CONTEXT)).to_have_class(re.compile(r"\bmdc-switch--disabled\b"))
    await page.locator(FC_EDIT).click()
    dialog = page.locator(FC_DIALOG)
    await expect(dialog).to_be_visible()
    code_tab = dialog.locator('ms-tab-group button[role="tab"]:has-text("Code Editor")')
    await expect(code_tab).to_have_attribute("aria-selected", "true")
    await dialog.locator('ms-tab-group button[role="tab"]:has-text("Visual Editor")').click()
    await code_tab.click()
    editor = dialog.locator("ms-text-editor textarea")
    await expect(editor).to_have_attribute("placeholder", re.compile("Tab"))
    bad = [dict(WEATHER, parameters={"type": "object", "title": "x", "properties": {}})]
    await editor.evaluate(
        """(el, text) => { el.value = text;
        el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); }""",
        json.dumps(bad, indent=2),
    )
    await dialog.locator('button[aria-label="Save the current function declarations"]').click()
    await expect(dialog).to_contain_text("Unknown key 'title'")
    await expect(page.locator(PROMPT_TEXTAREA)).to_have_count(1)
    await editor.fill(json.dumps([WEATHER], indent=2))
    await dialog.locator('button[aria-label="Save the current function declarations"]').click()
    await expect(dialog).to_have_count(0)

    await run_and_wait(page, 'Weather in Paris? #sim:tool=get_weather #sim:args={"city":"Paris"}')
    chunk = page.locator(f"{LAST_TURN} ms-function-call-chunk")
    await expect(chunk).to_have_count(1)
    await expect(
        chunk.locator("ms-code-block mat-panel-title span:not(.material-symbols-outlined)")
    ).to_have_text("get_weather")
    args = await chunk.locator("ms-code-block pre code").inner_text()
    assert json.loads(args) == {"city": "Paris"}
    tools = last_request(sim)["tools"]
    assert [d["name"] for d in tools["function_declarations"]] == ["get_weather"]
    assert tools["function_declarations"][0]["parameters"] == WEATHER["parameters"]


async def test_new_chat_confirms_then_empties_the_chat_and_keeps_settings(page: Page) -> None:
    new_chat = page.locator(NEW_CHAT_BUTTON)
    await expect(new_chat).to_be_disabled()
    await page.locator(TEMPERATURE).fill("0.4")
    await run_and_wait(page, "First message")
    assert "/prompts/new_chat" not in page.url
    await expect(new_chat).to_be_enabled()
    await new_chat.click()
    await expect(page.locator(f"{OVERLAY} .mat-mdc-dialog-inner-container")).to_be_visible()
    await page.locator('button.ms-button-primary:has-text("Discard and continue")').click()
    await expect(page.locator(f"{OVERLAY} .mat-mdc-dialog-inner-container")).to_have_count(0)
    await expect(page.locator("ms-chat-turn")).to_have_count(0)
    await expect(page.locator(MODEL_CONTAINER)).to_have_count(0)
    assert page.url == NEW_CHAT
    await expect(new_chat).to_be_disabled()
    await expect(page.locator(TEMPERATURE)).to_have_value("0.4")


async def test_temporary_chat_item_indicators_and_no_autosave(page: Page, sim: SimProcess) -> None:
    more = page.locator(MORE_ACTIONS)
    await expect(more).to_have_attribute("aria-expanded", "false")
    await expect(page.locator(INCOGNITO_TOGGLE)).to_have_count(0)
    await more.click()
    await expect(more).to_have_attribute("aria-expanded", "true")
    toggle = page.locator('button[data-test-incognito-toggle][aria-label="Temporary chat toggle"]')
    await expect(
        page.locator(
            f"{OVERLAY} div.cdk-overlay-backdrop.cdk-overlay-transparent-backdrop"
            ".cdk-overlay-backdrop-showing"
        )
    ).to_have_count(1)
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(page.locator("[data-test-incognito-checkmark]")).to_have_count(0)
    await toggle.click(force=True)
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(toggle).to_be_visible()
    await expect(page.locator('ms-incognito-mode-indicator [data-test-id="main-text"]')).to_have_text(
        "Temporary chat"
    )
    assert await page.locator("[data-test-incognito-checkmark]").count() >= 1
    await page.keyboard.press("Escape")
    await expect(more).to_have_attribute("aria-expanded", "false")
    await expect(page.locator(f"{OVERLAY} > *")).to_have_count(0)
    await run_and_wait(page, "Temporary hello")
    assert page.url == NEW_CHAT
    assert not [e for e in sim.inspect("events") if e["kind"] == "rpc"]
    await page.locator(NEW_CHAT_BUTTON).click()
    await page.locator('button.ms-button-primary:has-text("Discard and continue")').click()
    await expect(page.locator("ms-incognito-mode-indicator")).to_have_count(0)
    await expect(page.locator("[data-test-incognito-checkmark]")).to_have_count(0)
    await run_and_wait(page, "Saved hello")
    assert re.fullmatch(r"https://aistudio\.google\.com/prompts/1[A-Za-z0-9_-]{32}", page.url)
    assert await eventually(
        lambda: [e["method"] for e in sim.inspect("events") if e["kind"] == "rpc"] == ["CreatePrompt"]
    )


async def test_quota_error_shows_callout_toast_and_reports_jserror(page: Page, sim: SimProcess) -> None:
    await run_and_wait(page, "#sim:error=quota")
    await expect(page.locator(QUOTA_CALLOUT)).to_contain_text("user has exceeded quota")
    await expect(page.locator("ms-toast > div.toast.error").last).to_have_text(
        "Failed to generate content: Resource has been exhausted (e.g. check quota)."
    )
    await expect(page.locator(RUN_BUTTON)).to_be_disabled()
    errors = sim.inspect("jserrors")
    assert errors and errors[-1]["error"].startswith(
        "Failed to generate content: Resource has been exhausted"
    )
    assert errors[-1]["error"].endswith("(MakerSuiteService/GenerateContent)")


async def test_escape_closes_menus_listboxes_dialogs_and_the_container_empties(page: Page) -> None:
    empty = page.locator(f"{OVERLAY} > *")
    openers = [
        (MORE_ACTIONS, f'{OVERLAY} div[role="menu"]'),
        (UPLOAD_BUTTON, f'{OVERLAY} div[role="menu"]'),
        (FC_EDIT, FC_DIALOG),
        ("ms-model-selector", f'{OVERLAY} [role="listbox"]'),
    ]
    await set_toggle(page, FC_TOGGLE, True)
    for opener, opened in openers:
        await page.locator(opener).click()
        await expect(page.locator(opened)).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(page.locator(opened)).to_have_count(0)
        await expect(empty).to_have_count(0)


# ---- beyond the checklist: settings on the wire, stop, errors, uploads, overlays ----


async def test_run_settings_reach_the_backend(page: Page, sim: SimProcess) -> None:
    await page.locator(TEMPERATURE).fill("0.35")
    await page.locator(TOP_P).fill("0.8")
    await page.locator(MAX_TOKENS).fill("1234")
    for seq in ("END", "STOP"):
        await page.locator(STOP_INPUT).fill(seq)
        await page.locator(STOP_INPUT).press("Enter")
    await set_toggle(page, SEARCH_TOGGLE, True)
    await run_and_wait(page, "settings one")
    first = last_request(sim)
    config = first["generation_config"]
    assert (config["temperature"], config["top_p"], config["max_output_tokens"]) == (0.35, 0.8, 1234)
    assert sorted(config["stop_sequences"]) == ["END", "STOP"]
    assert first["tools"] == {"function_declarations": [], "google_search": True, "url_context": False}
    assert config["response_mime_type"] is None

    await set_toggle(page, SEARCH_TOGGLE, False)
    await set_toggle(page, URL_CONTEXT, True)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    await set_toggle(page, '[data-test-id="structuredOutputTooltip"] button[role="switch"]', True)
    await page.locator('button[aria-label="Edit JSON schema"]').click()
    dialog = page.locator('mat-dialog-container:has(h2:has-text("Structured output"))')
    await dialog.locator("ms-text-editor textarea").fill(json.dumps(schema))
    await dialog.locator('button[aria-label="Save the JSON schema"]').click()
    await expect(dialog).to_have_count(0)
    await run_and_wait(page, "settings two")
    second = last_request(sim)
    assert second["tools"] == {"function_declarations": [], "google_search": False, "url_context": True}
    assert second["generation_config"]["response_mime_type"] == "application/json"
    recorded_schema = second["generation_config"]["response_schema"]
    assert (json.loads(recorded_schema) if isinstance(recorded_schema, str) else recorded_schema) == schema
    assert json.loads(second["response"]["answer_text"])["answer"]


THINKING_CASES = [
    ("gemini-2.5-flash", "off", {"include_thoughts": False, "budget": 0, "level": None}),
    ("gemini-2.5-flash", "auto", {"include_thoughts": True, "budget": None, "level": None}),
    ("gemini-2.5-flash", "manual:2048", {"include_thoughts": True, "budget": 2048, "level": None}),
    ("gemini-2.5-pro", "auto", {"include_thoughts": True, "budget": None, "level": None}),
    ("gemini-2.5-pro", "manual:4096", {"include_thoughts": True, "budget": 4096, "level": None}),
    ("gemini-3-pro-preview", "level:Low", {"include_thoughts": True, "budget": None, "level": "LOW"}),
    (
        "gemini-3-flash-preview",
        "level:Minimal",
        {"include_thoughts": True, "budget": None, "level": "MINIMAL"},
    ),
    ("gemma-3-27b-it", "none", None),
]


async def test_grounding_metadata_in_either_candidate_slot_leaves_the_answer_intact(
    page: Page, sim: SimProcess
) -> None:
    """With Search on, #sim:search adds grounding at candidate index 7 or 8; the page renders the answer."""
    await set_toggle(page, SEARCH_TOGGLE, True)
    for index in (7, 8):
        sim.config(grounding_index=index)
        await run_and_wait(page, f"search slot {index} #sim:search=3 #sim:words=9")
        recorded = last_request(sim)
        assert recorded["ended"] == "complete"
        assert recorded["response"]["grounding"]["index"] == index
        assert len(recorded["response"]["grounding"]["sources"]) == 3
        answer = (await page.locator(ANSWER).last.inner_text()).strip()
        assert answer == recorded["response"]["answer_text"].strip()
        await expect(page.locator(ERROR_TOAST)).to_have_count(0)


@pytest.mark.parametrize(
    ("model", "action", "expected"), THINKING_CASES, ids=[f"{c[0]}-{c[1]}" for c in THINKING_CASES]
)
async def test_thinking_settings_reach_the_backend(
    context: BrowserContext, sim: SimProcess, model: str, action: str, expected: dict | None
) -> None:
    page = await studio_with(context, dict(OPEN_PREFS, promptModel=f"models/{model}"))
    if action == "off":
        await set_toggle(page, THINKING_TOGGLE, False)
    elif action.startswith("manual:"):
        await set_toggle(page, MANUAL_BUDGET, True)
        await page.locator(BUDGET_INPUT).fill(action.split(":")[1])
    elif action.startswith("level:"):
        await page.locator(LEVEL_SELECT).click()
        await page.locator(f'{LEVEL_OPTIONS}:has-text("{action.split(":")[1]}")').click()
    await run_and_wait(page, "think about it")
    assert last_request(sim)["generation_config"]["thinking"] == expected
    thoughts = page.locator(f"{LAST_TURN} ms-prompt-chunk > ms-thought-chunk > mat-expansion-panel")
    if expected and expected["budget"] != 0:
        await expect(thoughts).to_have_count(1)
        await expect(
            thoughts.locator(".mat-expansion-panel-body > ms-text-chunk > ms-cmark-node.cmark-node")
        ).not_to_have_text("")
        await expect(thoughts).to_contain_text("Thoughts")
        order = await page.locator(f"{LAST_TURN} ms-prompt-chunk").evaluate_all(
            "els => els.map(e => e.querySelector('ms-thought-chunk') ? 'thought' : 'answer')"
        )
        assert order == ["thought", "answer"]
    else:
        await expect(thoughts).to_have_count(0)
    await page.close()


async def test_stop_mid_stream_keeps_the_partial_answer_and_closes_the_request(
    page: Page, sim: SimProcess
) -> None:
    await run_prompt(page, "#sim:delay_ms=200 #sim:words=50")
    answer = page.locator(ANSWER)
    await expect(answer).not_to_have_text("")
    await page.locator(STOP_GENERATING).click()
    await wait_until_done(page)
    await expect(page.locator(RUN_BUTTON)).to_be_disabled()
    partial = (await answer.inner_text()).strip()
    full = last_request(sim)["response"]["answer_text"]
    assert partial and len(partial) < len(full)
    assert await eventually(lambda: last_request(sim).get("ended") == "client_closed")


async def test_keyboard_ctrl_enter_runs_and_plain_enter_adds_a_newline(page: Page) -> None:
    textarea = page.locator(PROMPT_TEXTAREA)
    await textarea.fill("line one")
    await textarea.press("Enter")
    await expect(textarea).to_have_value("line one\n")
    await expect(page.locator("ms-chat-turn")).to_have_count(0)
    await textarea.press("Control+Enter")
    await expect(textarea).to_have_value("")
    await wait_until_done(page)
    await expect(page.locator("ms-chat-turn")).to_have_count(2)


async def test_upload_through_the_menu_attaches_files_and_sends_them(
    context: BrowserContext, sim: SimProcess, tmp_path: Path
) -> None:
    prefs = dict(OPEN_PREFS)
    del prefs["fileCopyrightAcknowledged"]
    page = await studio_with(context, prefs)
    note = tmp_path / "note.txt"
    note.write_text("hello attachment")
    await page.locator(UPLOAD_BUTTON).first.click()
    item = page.locator(f"{OVERLAY} div[role='menu'] button[role='menuitem']").filter(has_text="Upload File")
    await expect(item).to_have_attribute("aria-label", "Upload File")
    async with page.expect_file_chooser() as chooser_info:
        await item.click()
    await (await chooser_info.value).set_files(str(note))
    agree = page.locator(f"{OVERLAY} button:has-text('I agree')")
    await expect(agree).to_be_visible()
    await agree.click()
    await expect(
        page.locator(f"{OVERLAY} div.cdk-overlay-backdrop.cdk-overlay-backdrop-showing")
    ).to_have_count(0)
    assert (await read_prefs(page))["fileCopyrightAcknowledged"] is True
    await expect(page.locator("section.attachment-wrapper")).not_to_have_class(re.compile(r"\bempty\b"))
    await expect(page.locator("section.attachment-wrapper")).to_contain_text("note.txt")
    await expect(page.locator(RUN_BUTTON)).to_be_enabled()

    await page.locator(UPLOAD_BUTTON).first.click()
    await page.locator(
        f"{OVERLAY} div[role='menu'] button[role='menuitem'] input[type=file]"
    ).set_input_files([str(note)])
    await expect(page.locator("section.attachment-wrapper ms-file-chunk")).to_have_count(2)
    await expect(page.locator(f"{OVERLAY} > *")).to_have_count(0)
    await page.locator(RUN_BUTTON).click()
    await wait_until_done(page)
    attachments = last_request(sim)["attachments"]
    assert [(a["name"], a["mime_type"], a["size"]) for a in attachments] == [
        ("note.txt", "text/plain", 16)
    ] * 2
    await expect(page.locator("section.attachment-wrapper")).to_have_class(re.compile(r"\bempty\b"))
    await page.close()


async def test_http_and_stream_errors_end_the_turn_with_a_toast(page: Page, sim: SimProcess) -> None:
    await run_and_wait(page, "#sim:error=rate_limit")
    await expect(page.locator(ERROR_TOAST).last).to_contain_text("Too many requests")
    await expect(page.locator(QUOTA_CALLOUT)).to_have_count(0)
    await run_and_wait(page, "#sim:error=inline")
    await expect(page.locator(QUOTA_CALLOUT)).to_contain_text("user has exceeded quota")
    await run_and_wait(page, "#sim:error=cut")
    await expect(page.locator(ERROR_TOAST).last).to_have_text("An internal error has occurred.")
    await expect(page.locator(QUOTA_CALLOUT)).to_have_count(0)
    reported = [e["error"] for e in sim.inspect("jserrors")]
    assert len(reported) == 3 and all(e.startswith("Failed to generate content: ") for e in reported)


async def test_injected_overlays_appear_and_escape_clears_the_backdrop(
    context: BrowserContext, sim: SimProcess
) -> None:
    sim.config(
        inject_overlays=[
            "transparent_backdrop",
            "tooltip",
            "survey_iframe",
            "welcome_dialog",
            "cookie_banner",
        ]
    )
    page = await open_studio(context, OPEN_PREFS)
    await expect(page.locator(f"{OVERLAY} .mat-mdc-dialog-inner-container")).to_be_visible()
    await expect(page.locator(".cdk-overlay-pane:has(.mdc-tooltip)")).to_have_count(1)
    await expect(page.locator('iframe[id*="google-hats-survey"]')).to_have_count(1)
    backdrops = page.locator("div.cdk-overlay-backdrop.cdk-overlay-backdrop-showing")
    for _ in range(3):
        if not await backdrops.count():
            break
        await page.keyboard.press("Escape")
    await expect(backdrops).to_have_count(0)
    await page.locator(".glue-cookie-notification-bar__reject").click()
    await expect(page.locator(".glue-cookie-notification-bar")).to_have_count(0)
    await page.evaluate("""() => document.querySelectorAll('.cdk-overlay-pane:has(.mdc-tooltip), '
                           + 'iframe[id*="google-hats-survey"]').forEach(el => el.remove())""")
    await expect(page.locator(f"{OVERLAY} > *")).to_have_count(0)
    await run_and_wait(page, "after the overlays")
    await page.close()


async def test_new_chat_can_reset_function_calling(context: BrowserContext, sim: SimProcess) -> None:
    sim.config(new_chat_resets_function_calling=True)
    page = await open_studio(context, OPEN_PREFS)
    await save_declarations(page, [WEATHER])
    await run_and_wait(page, "hi")
    await page.locator(NEW_CHAT_BUTTON).click()
    await page.locator('button.ms-button-primary:has-text("Discard and continue")').click()
    await expect(page.locator(FC_TOGGLE)).to_have_attribute("aria-checked", "false")
    await expect(page.locator(FC_EDIT)).to_be_disabled()
    await page.close()


async def test_run_settings_stay_visible_in_a_narrow_window(context: BrowserContext, sim: SimProcess) -> None:
    page = await studio_with(context, OPEN_PREFS)
    await page.set_viewport_size({"width": 460, "height": 800})
    await expect(page.locator("ms-run-settings.expanded")).to_be_visible()
    await page.locator(TEMPERATURE).fill("0.5")
    await expect(page.locator(TEMPERATURE)).to_have_value("0.5")
    await run_and_wait(page, "narrow")
    await page.close()


async def test_virtualised_turns_lose_their_text_off_screen_and_get_it_back(
    context: BrowserContext, sim: SimProcess
) -> None:
    sim.config(virtualize_turns=True)
    page = await open_studio(context, OPEN_PREFS)
    long_text = "\n".join(f"line {i}" for i in range(45))
    for _ in range(2):
        await run_and_wait(page, f"{long_text} #sim:echo")
    answer_of = "ms-prompt-chunk.text-chunk > ms-text-chunk > ms-cmark-node.cmark-node"
    first_answer = page.locator("ms-chat-turn").nth(1).locator(answer_of)
    await expect(first_answer).to_have_text("")
    await expect(page.locator(f"{LAST_TURN} {answer_of}")).to_contain_text("line 44")
    await page.locator("ms-chat-turn").nth(1).scroll_into_view_if_needed()
    await expect(first_answer).to_contain_text("line 0")
    await page.locator(LAST_TURN).evaluate("el => el.scrollIntoView({block: 'end'})")
    await expect(page.locator(f"{LAST_TURN} {answer_of}")).to_contain_text("line 44")
    await page.close()


async def test_first_use_dialogs_follow_their_preference_keys(
    context: BrowserContext, sim: SimProcess
) -> None:
    sim.config(first_use_dialogs=True)
    prefs = dict(OPEN_PREFS, hasShownDrivePermissionDialog=True)
    page = await open_studio(context, prefs)
    dialog = page.locator(f"{OVERLAY} .mat-mdc-dialog-inner-container")
    await expect(dialog).to_have_count(1)
    await expect(dialog).to_contain_text("Welcome")
    await expect(
        page.locator(f"{OVERLAY} div.cdk-overlay-backdrop.cdk-overlay-backdrop-showing")
    ).to_have_count(1)
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    assert (await read_prefs(page))["warmWelcomeDisplayed"] is True
    await set_toggle(page, SEARCH_TOGGLE, True)
    await expect(dialog).to_contain_text("Grounding with Google Search")
    await page.keyboard.press("Escape")
    await expect(page.locator(SEARCH_TOGGLE)).to_have_attribute("aria-checked", "true")
    await page.reload()
    await expect(page.locator(PROMPT_TEXTAREA)).to_be_visible()
    await set_toggle(page, SEARCH_TOGGLE, True)
    await expect(page.locator(f"{OVERLAY} > *")).to_have_count(0)
    await page.close()


async def test_thought_panel_says_thinking_while_running_then_thoughts(page: Page, sim: SimProcess) -> None:
    """The answer is held after its first thought (``#sim:hold``) until the test has seen the running state, so
    the passing "Thinking" phase is checked without depending on timing."""
    await run_prompt(page, "#sim:think=12 #sim:hold=thinking #sim:words=6")
    panel = page.locator(f"{LAST_TURN} ms-prompt-chunk > ms-thought-chunk > mat-expansion-panel")
    await expect(panel.locator("img.thinking-progress-icon.in-progress")).to_have_count(1)
    await expect(panel.locator("mat-panel-title")).to_have_text("Thinking")
    await expect(panel).not_to_have_class(re.compile(r"\bmat-expanded\b"))
    assert sim.inspect("requests/last")["held"] == "thinking"
    sim.inspect("release", {"hold": "thinking"})
    await wait_until_done(page)
    await expect(panel.locator("mat-panel-title")).to_have_text("Thoughts")
    await expect(panel.locator("img.thinking-progress-icon.in-progress")).to_have_count(0)
    scrolled = await page.locator("ms-autoscroll-container").evaluate(
        "el => el.scrollHeight - el.scrollTop - el.clientHeight"
    )
    assert scrolled < 2


async def test_generate_content_401_sends_the_page_to_sign_in(browser: Browser, sim: SimProcess) -> None:
    own = await browser.new_context(
        ignore_https_errors=True, viewport=VIEWPORT, storage_state=sim.storage_state()
    )
    page = await own.new_page()
    await page.goto(NEW_CHAT)
    await run_prompt(page, "#sim:error=login")
    await page.wait_for_url(re.compile(r"^https://accounts\.google\.com/v3/signin/identifier\?continue="))
    await own.close()


async def test_model_picker_writes_prompt_model_and_reloads(page: Page) -> None:
    await expect(page.locator('ms-model-selector > span[data-test-id="model-name"]')).to_have_text(
        "gemini-2.5-pro"
    )
    await page.locator("ms-model-selector").click()
    option = page.locator(f'{OVERLAY} [role="listbox"] [role="option"]').filter(
        has_text="gemini-2.5-flash-lite"
    )
    await option.click()
    await expect(page.locator(MODEL_NAME).first).to_have_text("gemini-2.5-flash-lite")
    assert (await read_prefs(page))["promptModel"] == "models/gemini-2.5-flash-lite"
    await expect(page.locator(THINKING_TOGGLE)).to_have_count(1)
    await expect(page.locator(MAX_TOKENS)).to_be_visible()


# ---- the page's wire code (static/wire.js) against the shared fixtures, in the browser ----

WIRE_JS = Path(__file__).resolve().parents[2] / "aistudio_sim" / "static" / "wire.js"

DECODE_STREAM_JS = """([bytes, cuts]) => {
    const body = new Uint8Array(bytes);
    const scanner = new SimWire.StreamScanner();
    const bounds = [0, ...cuts, body.length];
    const out = {reasoning: "", content: "", calls: [], finish: null, usage: null, errors: [], done: false};
    for (let i = 0; i + 1 < bounds.length; i++) {
        for (const item of scanner.feed(body.slice(bounds[i], bounds[i + 1]))) {
            if (item.kind === "error") { out.errors.push(SimWire.parseStatus(item.value)); continue; }
            const parts = SimWire.classifyEvent(item.value);
            out.reasoning += parts.thoughts.join("");
            out.content += parts.answers.join("");
            out.calls.push(...parts.calls);
            if (parts.finishReason !== null) out.finish = parts.finishReason;
            if (parts.usage) out.usage = parts.usage;
        }
    }
    out.done = scanner.done;
    return out;
}"""

STREAM_EXPECTED = {
    "generate_content_text.stream": {
        "reasoning": "",
        "content": 'Hello! The capital of France is **Paris**.\nFun fact: the café "Le Procope" opened in 1686 '
        "— it still serves coffee ☕.",
        "calls": [],
        "usage": (12, 30, 42),
    },
    "generate_content_thinking.stream": {
        "reasoning": "**Breaking down the multiplication**\n\nThe user wants 17 × 23. I'll split it: 17 × 20 = 340 "
        "and 17 × 3 = 51, so the total is 391.\n",
        "content": "17 × 23 = **391**.",
        "calls": [],
        "usage": (14, 9, 143),
    },
    "generate_content_function_call.stream": {
        "reasoning": "The user wants a refundable flight to Tokyo for two people; I will call book_flight, then "
        "check the weather.\n",
        "content": "",
        "calls": [
            {
                "name": "book_flight",
                "args": {
                    "destination": "Tokyo",
                    "passengers": 2,
                    "max_price": 1234.5,
                    "refundable": True,
                    "window_seat": False,
                    "promo_code": None,
                    "traveler": {
                        "name": "Ada Lovelace",
                        "age": 36,
                        "contact": {"email": "ada@example.com", "sms": False},
                    },
                    "dates": ["2026-05-01", "2026-05-09"],
                    "seat_prefs": [{"row": 12, "letter": "A"}, {"row": 14, "letter": "C"}],
                    "tags": [],
                    "meta": {},
                },
            },
            {"name": "get_weather", "args": {"city": "Tokyo", "unit": "celsius", "days": [1, 2, 3]}},
        ],
        "usage": (88, 71, 202),
    },
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def wire_page(browser: Browser) -> AsyncIterator[Page]:
    """A blank page with only static/wire.js loaded."""
    ctx = await browser.new_context()
    blank = await ctx.new_page()
    await blank.set_content("<!doctype html><body></body>")
    await blank.add_script_tag(path=str(WIRE_JS))
    yield blank
    await ctx.close()


@pytest.mark.parametrize("name", sorted(STREAM_EXPECTED))
async def test_wire_scanner_decodes_the_fixture_streams_however_they_are_cut(
    wire_page: Page, fixtures_dir: Path, name: str
) -> None:
    body = (fixtures_dir / name).read_bytes()
    boundaries = json.loads((fixtures_dir / "chunk_boundaries.json").read_text())[name]
    expected = STREAM_EXPECTED[name]
    for cuts in ([], boundaries, list(range(1, len(body)))):
        got = await wire_page.evaluate(DECODE_STREAM_JS, [list(body), cuts])
        assert got["done"] and not got["errors"]
        assert (got["reasoning"], got["content"], got["finish"]) == (
            expected["reasoning"],
            expected["content"],
            1,
        )
        assert got["calls"] == expected["calls"]
        usage = got["usage"]
        assert (usage[0], usage[1], usage[2]) == expected["usage"]


async def test_wire_scanner_reports_a_trailing_error_element(wire_page: Page) -> None:
    body = b'[[[[[[[[null,"par"]],"model"]]],null,[1,null,1]]],[8,"Resource has been exhausted (e.g. check quota)."]]'
    got = await wire_page.evaluate(DECODE_STREAM_JS, [list(body), [5, 30, 31, 60]])
    assert got["content"] == "par" and got["done"]
    assert got["errors"] == [{"code": 8, "message": "Resource has been exhausted (e.g. check quota)."}]
    cut = await wire_page.evaluate(DECODE_STREAM_JS, [list(body[:40]), []])
    assert not cut["done"]


async def test_wire_argument_decoder_accepts_every_variant(wire_page: Page, fixtures_dir: Path) -> None:
    cases = json.loads((fixtures_dir / "function_call_args_variants.json").read_text())["cases"]
    decoded = await wire_page.evaluate("cases => cases.map(c => SimWire.decodeArgs(c.args))", cases)
    for case, got in zip(cases, decoded, strict=True):
        assert got == case["expected"], case["id"]


# ---- DOM variants: changed layouts, each breaking one of the worker's selectors (aistudio_sim/README.md) ----


async def test_variant_renamed_run_button_moves_run_into_a_new_element(
    context: BrowserContext, sim: SimProcess
) -> None:
    sim.config(dom_variant="renamed_run_button")
    page = await open_studio(context, OPEN_PREFS)
    await expect(page.locator("ms-run-button")).to_have_count(0)
    await expect(page.locator('button[aria-label="Run"]')).to_have_count(0)
    send = page.locator('ms-send-button button[data-test-id="send-button"]')
    await expect(send).to_have_attribute("aria-label", "Send")
    await set_prompt_by_script(page, "through the renamed button")
    await send.click()
    await expect(page.locator(STOP_GENERATING)).to_have_count(1)
    await wait_until_done(page)
    await expect(send).to_have_attribute("aria-label", "Send")
    assert last_request(sim)["prompt"] == "through the renamed button"
    await page.close()


async def test_variant_no_top_p_removes_the_control(context: BrowserContext, sim: SimProcess) -> None:
    sim.config(dom_variant="no_top_p")
    page = await open_studio(context, OPEN_PREFS)
    await expect(page.locator(MAX_TOKENS)).to_have_count(1)
    await expect(page.locator(TOP_P)).to_have_count(0)
    await expect(page.locator(TEMPERATURE)).to_have_count(1)
    await page.close()


async def test_variant_moved_advanced_settings_relabels_output_length(
    context: BrowserContext, sim: SimProcess
) -> None:
    sim.config(dom_variant="moved_advanced_settings")
    page = await open_studio(context, OPEN_PREFS)
    await expect(page.locator(MAX_TOKENS)).to_have_count(0)
    moved = page.locator("ms-advanced-panel input.max-tokens-input")
    await expect(moved).to_have_attribute("aria-label", "Output token limit")
    await expect(page.locator(f"ms-run-settings {STOP_INPUT}")).to_have_count(0)
    await expect(page.locator(f"ms-advanced-panel {STOP_INPUT}")).to_have_count(1)
    await moved.fill("321")
    await moved.dispatch_event("change")
    await run_and_wait(page, "with the moved group")
    assert last_request(sim)["generation_config"]["max_output_tokens"] == 321
    await page.close()


async def test_variant_first_use_dialog_blocks_running_until_accepted(
    context: BrowserContext, sim: SimProcess
) -> None:
    sim.config(dom_variant="first_use_dialog")
    page = await open_studio(context, OPEN_PREFS)
    dialog = page.locator(f"{OVERLAY} .onboarding-scrim[role=dialog]")
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_visible()
    await set_prompt_by_script(page, "blocked")
    await page.evaluate("(sel) => document.querySelector(sel).click()", RUN_BUTTON)
    await expect(page.locator(STOP_GENERATING)).to_have_count(0)
    assert sim.inspect("requests") == []
    await dialog.get_by_role("button", name="Start building", exact=True).click()
    await expect(dialog).to_have_count(0)
    await run_and_wait(page, "accepted")
    assert last_request(sim)["prompt"] == "accepted"
    assert (await read_prefs(page))["hasSeenStudioOnboarding"] is True
    await page.reload()
    await expect(page.locator(MODEL_NAME)).to_be_visible()
    await expect(dialog).to_have_count(0)
    await page.close()
