"""Adding an account without a desktop (issue 20), on the real stack with a pool of demo accounts: an operator
signs in ``demo3@example.com`` through the dashboard's remote view (Playwright clicks on the streamed picture and
types, as a person would) and the new account serves a request; cookie imports, valid, expired and malformed,
in both the extension and the Playwright format; Cancel closes a sign-in, and at most two run at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, SHARED_ENV
from tests.requirements import CHROMIUM

ADMIN_KEY = "add-account-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SIGN_IN = "https://accounts.google.com/v3/signin/identifier"


@pytest.fixture(scope="module")
def pool() -> Iterator[Stack]:
    with Stack(
        env={**SHARED_ENV, "ADMIN_KEY": ADMIN_KEY, "DEMO_ACCOUNTS": "2"}, prefix="aisp-add-"
    ) as running:
        yield running


def accounts(stack: Stack) -> dict[str, str]:
    body = requests.get(stack.base_url + "/api/accounts", headers=ADMIN, timeout=10).json()
    return {a["name"]: a["state"] for a in body["data"]}


def page_accounts(stack: Stack) -> list[str]:
    body = requests.get(stack.base_url + "/api/accounts", headers=ADMIN, timeout=10).json()
    return [s["account"] for s in body["slots"]]


def wait_for_account(stack: Stack, name: str, state: str = "ready", timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while accounts(stack).get(name) != state:  # an outside condition, polled with a deadline
        assert time.monotonic() < deadline, f"{name} never {state}: {accounts(stack)}"
        time.sleep(0.25)


def field_centres(browser: Browser, stack: Stack) -> dict[str, tuple[float, float]]:
    """Where the sign-in page's fields are in a page of the worker's size: what an operator sees and aims at."""
    rules = f"MAP accounts.google.com 127.0.0.1:{stack.sim_port}"
    own = browser.browser_type.launch(
        executable_path=str(CHROMIUM), headless=True, args=[f"--host-resolver-rules={rules}"]
    )
    try:
        page = own.new_page(viewport={"width": 1440, "height": 900}, ignore_https_errors=True)
        page.goto(SIGN_IN)
        centres = {}
        for name, selector in (("email", "#identifierId"), ("password", "#password")):
            box = page.locator(selector).bounding_box()
            assert box is not None
            centres[name] = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        return centres
    finally:
        own.close()


def click_at(page: Page, x: float, y: float) -> None:
    """Click the streamed picture where the page's point (x, y) is shown."""
    box = page.locator("#screen").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x * box["width"] / 1440, box["y"] + y * box["height"] / 900)


def test_an_operator_signs_in_a_new_account_through_the_remote_view(
    pool: Stack, browser: Browser, page: Page
) -> None:
    pool.sim_inspect("config", method="POST", json={"accept_any_email": True})
    centres = field_centres(browser, pool)
    page.goto(pool.base_url + "/dashboard/add-account.html")
    page.get_by_role("textbox", name="Admin key (ADMIN_KEY)").fill(ADMIN_KEY)
    page.get_by_role("button", name="Use this key").click()
    page.get_by_label("Account name (letters, digits, _ and -)").fill("demo3")
    page.get_by_role("button", name="Start the sign-in").click()
    screen = page.get_by_role("img", name="The sign-in page on the server: click and type here")
    expect(screen).to_be_visible(timeout=30_000)
    expect(screen).to_be_focused()
    # As an operator does: wait until the picture shows the sign-in page, then aim at its fields.
    expect(page.locator("#page-url")).to_contain_text("accounts.google.com/v3/signin", timeout=30_000)
    shown = int(page.locator("#screen").get_attribute("data-frames") or 0)
    expect(page.locator("#screen")).not_to_have_attribute("data-frames", str(shown), timeout=10_000)
    click_at(page, *centres["email"])
    page.keyboard.type("demo3@example.comx")
    page.keyboard.press("Backspace")  # a typo, corrected as an operator would
    click_at(page, *centres["password"])
    page.keyboard.type("any password")
    page.keyboard.press("Enter")
    expect(page.locator("#state")).to_contain_text("saved as account 'demo3'", timeout=60_000)
    expect(screen).to_be_hidden()
    wait_for_account(pool, "demo3")
    profile = pool.auth_dir / "active" / "demo3.json"
    assert profile.stat().st_mode & 0o777 == 0o600

    for other in ("demo", "demo2"):  # only the new account serves
        requests.post(
            f"{pool.base_url}/api/accounts/{other}/disable", headers=ADMIN, timeout=30
        ).raise_for_status()
    deadline = time.monotonic() + 60
    while {"demo", "demo2"} & set(page_accounts(pool)):  # their pages close: polled with a deadline
        assert time.monotonic() < deadline, page_accounts(pool)
        time.sleep(0.25)
    try:
        body = {"model": PLAIN_MODEL, "messages": [{"role": "user", "content": "#sim:words=3 hi"}]}
        served = requests.post(pool.base_url + "/v1/chat/completions", json=body, headers=ADMIN, timeout=120)
        assert served.status_code == 200, served.text
        assert pool.sim_requests()[-1]["account"] == "demo3@example.com"
    finally:
        for other in ("demo", "demo2"):
            requests.post(f"{pool.base_url}/api/accounts/{other}/enable", headers=ADMIN, timeout=30)


def test_the_remote_view_needs_its_one_time_ticket(pool: Stack, page: Page) -> None:
    started = requests.post(pool.base_url + "/api/accounts/login", json={}, headers=ADMIN, timeout=60)
    assert started.status_code == 201, started.text
    session = started.json()["session"]
    assert requests.post(pool.base_url + "/api/accounts/login", json={}, timeout=10).status_code == 401
    opened = page.evaluate(
        """(url) => new Promise((resolve) => {
             const ws = new WebSocket(url);
             ws.onopen = () => { ws.close(); resolve("open"); };
             ws.onerror = () => resolve("refused");
           })""",
        pool.base_url.replace("http", "ws") + f"/login-view/{session}?ticket=forged",
    )
    assert opened == "refused"
    view = pool.base_url.replace("http", "ws") + f"/login-view/{session}?ticket={started.json()['ticket']}"
    first = page.evaluate(
        """(url) => new Promise((resolve) => {
             const ws = new WebSocket(url);
             ws.onmessage = (m) => { ws.close(); resolve(JSON.parse(m.data).type); };
             ws.onerror = () => resolve("refused");
           })""",
        view,
    )
    assert first == "frame"
    again = page.evaluate(
        "(url) => new Promise((resolve) => { const ws = new WebSocket(url); ws.onopen = () => resolve('open');"
        " ws.onerror = () => resolve('refused'); })",
        view,
    )
    assert again == "refused"  # the ticket was used


def extension_export(state: dict[str, Any], *, expired: bool = False) -> list[dict[str, Any]]:
    """The storage state's cookies as a cookie-export extension writes them."""
    out = []
    for c in state["cookies"]:
        out.append(
            {
                "domain": c["domain"],
                "hostOnly": not c["domain"].startswith("."),
                "name": c["name"],
                "value": c["value"],
                "path": c["path"],
                "secure": c["secure"],
                "httpOnly": c["httpOnly"],
                "sameSite": {"None": "no_restriction", "Lax": "lax", "Strict": "strict"}[c["sameSite"]],
                **({"expirationDate": time.time() - 3600} if expired else {"session": True}),
            }
        )
    return out


def import_(stack: Stack, body: dict[str, Any]) -> requests.Response:
    return requests.post(stack.base_url + "/api/accounts/import", json=body, headers=ADMIN, timeout=90)


def test_cookie_imports_valid_expired_and_malformed(pool: Stack) -> None:
    state = pool.sim_inspect("sessions", method="POST", json={"email": "demo4@example.com"})
    made = import_(pool, {"name": "demo4", "cookies": extension_export(state)})
    assert made.status_code == 201, made.text
    assert made.json()["account"] == "demo4"
    wait_for_account(pool, "demo4")

    state5 = pool.sim_inspect("sessions", method="POST", json={"email": "demo5@example.com"})
    as_playwright = import_(pool, {"name": "demo5", "storage_state": state5})
    assert as_playwright.status_code == 201, as_playwright.text

    again = import_(pool, {"name": "demo4", "cookies": extension_export(state)})
    assert again.status_code == 400 and "exists already" in again.json()["error"]["message"]

    expired = import_(pool, {"name": "old", "cookies": extension_export(state, expired=True)})
    assert expired.status_code == 400 and expired.json()["error"]["code"] == "cookies_expired"

    signed_out = {**state, "cookies": [{**c, "value": "signed-out"} for c in state["cookies"]]}
    refused = import_(pool, {"name": "stale", "storage_state": signed_out})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "import_refused"
    assert "sign-in" in refused.json()["error"]["message"]
    assert not (pool.auth_dir / "active" / "stale.json").exists()

    for body, what in (
        ({"name": "x", "cookies": "nope"}, "cookies must be"),
        ({"name": "x", "cookies": [{"name": "SID"}]}, "cookies[0].domain"),
        ({"name": "x"}, "storage_state (Playwright) or cookies"),
        ({"cookies": extension_export(state)}, "name"),
        ({"name": "../evil", "cookies": extension_export(state)}, "account name"),
    ):
        bad = import_(pool, body)
        assert bad.status_code == 400, (body, bad.text)
        assert what in bad.json()["error"]["message"], (what, bad.json())


def close_view(stack: Stack, page: Page, started: dict[str, Any]) -> None:
    """Open a sign-in's view and leave it: the API cancels a sign-in whose viewer went."""
    url = (
        stack.base_url.replace("http", "ws") + f"/login-view/{started['session']}?ticket={started['ticket']}"
    )
    page.evaluate(
        "(url) => new Promise((resolve) => { const ws = new WebSocket(url);"
        " ws.onmessage = () => { ws.close(); resolve(); }; ws.onerror = () => resolve(); })",
        url,
    )


def test_cancel_closes_the_sign_in_and_at_most_two_run_at_once(pool: Stack, page: Page) -> None:
    page.goto(pool.base_url + "/dashboard/add-account.html")
    page.get_by_role("textbox", name="Admin key (ADMIN_KEY)").fill(ADMIN_KEY)
    page.get_by_role("button", name="Use this key").click()
    page.get_by_role("button", name="Start the sign-in").click()
    expect(page.locator("#page-url")).to_contain_text("accounts.google.com", timeout=30_000)
    page.get_by_role("button", name="Cancel the sign-in").click()
    expect(page.locator("#state")).to_contain_text("Cancelled.")

    def start() -> requests.Response:
        return requests.post(pool.base_url + "/api/accounts/login", json={}, headers=ADMIN, timeout=60)

    first = start()
    assert first.status_code == 201, first.text
    deadline = time.monotonic() + 30
    second = start()
    while (
        second.status_code != 201
    ):  # the cancelled sign-in's page closes in the worker: polled with a deadline
        assert time.monotonic() < deadline, second.text
        time.sleep(0.25)
        second = start()
    try:
        third = start()
        assert third.status_code == 400, third.text
        assert third.json()["error"]["code"] == "login_refused"
        assert "2 sign-ins are open already" in third.json()["error"]["message"]
    finally:
        close_view(pool, page, first.json())
        close_view(pool, page, second.json())
