"""The operator dashboard (issue 20) driven by Playwright + Chromium against the real stack: it refuses without
the admin key; each panel shows what the JSON endpoints report; each action works and shows up live; the
controls are labelled and reachable from the keyboard."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import requests
from playwright.sync_api import Page, expect

from aistudio_sim.stack import Stack
from tests.e2e.conftest import ADMIN_KEY, PLAIN_MODEL

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
LIVE_MS = 10_000  # the feed looks once a second; a change shows within a few


def signed_in(page: Page, stack: Stack) -> Page:
    page.goto(stack.base_url + "/dashboard")
    page.get_by_label("Admin key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    return page


def chat(stack: Stack, text: str = "#sim:words=3 hi") -> requests.Response:
    body = {"model": PLAIN_MODEL, "messages": [{"role": "user", "content": text}]}
    return requests.post(stack.base_url + "/v1/chat/completions", json=body, headers=ADMIN, timeout=120)


def api(stack: Stack, path: str) -> Any:
    resp = requests.get(stack.base_url + path, headers=ADMIN, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_without_the_admin_key_nothing_is_shown(stack: Stack, page: Page) -> None:
    assert requests.get(stack.base_url + "/api/events", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer wrong-key-0123456789"}
    assert requests.get(stack.base_url + "/api/events", headers=wrong, timeout=10).status_code == 401
    page.goto(stack.base_url + "/dashboard")
    expect(page.get_by_label("Admin key")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    page.get_by_label("Admin key").fill("wrong-key-0123456789")
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"Invalid or missing (admin )?key"))
    expect(page.locator("#main")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.getItem('aistudio-proxy.admin-key')") is None
    assert "wrong-key" not in page.url


def test_the_key_is_kept_for_the_tab_and_never_in_a_url(stack: Stack, page: Page) -> None:
    signed_in(page, stack)
    assert page.evaluate("() => sessionStorage.getItem('aistudio-proxy.admin-key')") == ADMIN_KEY
    page.reload()
    expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    assert ADMIN_KEY not in page.url
    page.get_by_role("button", name="Forget admin key").click()
    expect(page.get_by_label("Admin key")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('aistudio-proxy.admin-key')") is None


def test_every_panel_shows_what_the_api_reports(stack: Stack, page: Page) -> None:
    done = chat(stack)
    assert done.status_code == 200, done.text
    request_id = done.headers["x-request-id"]
    signed_in(page, stack)
    processes = page.locator("#processes tbody")
    for name in ("api_server", "browser_worker", "stream_proxy"):
        expect(processes.get_by_role("row").filter(has_text=name)).to_have_count(1)
    expect(processes.get_by_role("row").filter(has_text="stream_proxy")).to_contain_text(
        f"pid {stack.pid('stream_proxy')}"
    )
    for account in api(stack, "/api/accounts")["data"]:
        expect(page.locator("#accounts tbody")).to_contain_text(account["name"])
    add = page.get_by_role("link", name="Add an account")
    expect(add).to_have_attribute("href", "/dashboard/add-account.html")
    for slot in api(stack, "/api/accounts")["slots"]:
        expect(page.locator("#slots tbody")).to_contain_text(slot["id"])
    recent = page.locator("#recent tbody").get_by_role("row").filter(has_text=request_id)
    expect(recent).to_contain_text("chat")
    expect(recent).to_contain_text("200")
    recent.get_by_role("button", name=f"Timeline of request {request_id}").click()
    expect(page.locator("#timeline")).to_contain_text(f'"id": "{request_id}"')
    expect(page.locator("#timeline")).to_be_focused()
    timeline = json.loads(page.locator("#timeline").inner_text())
    assert timeline == api(stack, f"/api/requests/{request_id}")
    usage = {row["model"]: row for row in api(stack, "/api/usage?group_by=model")["data"]}
    usage_row = page.locator("#usage tbody").get_by_role("row").filter(has_text=PLAIN_MODEL)
    expect(usage_row).to_contain_text(str(usage[PLAIN_MODEL]["requests"]))
    expect(page.locator("#usage-chart svg rect")).to_have_count(len(usage))
    for key in api(stack, "/api/keys")["data"]:
        expect(page.locator("#keys tbody")).to_contain_text(key["prefix"])


def test_a_key_is_created_limited_and_revoked_from_the_dashboard(stack: Stack, page: Page) -> None:
    signed_in(page, stack)
    label = f"dash-{int(time.time() * 1000)}"
    page.get_by_label("Label").fill(label)
    page.get_by_label("Requests per minute").fill("5")
    page.get_by_role("button", name="Create the key").click()
    expect(page.locator("#new-key")).to_contain_text("sk-aisp-")
    made = next(k for k in api(stack, "/api/keys")["data"] if k["label"] == label)
    assert made["rpm"] == 5
    row = page.locator("#keys tbody").get_by_role("row").filter(has_text=label)
    expect(row).to_contain_text("rpm 5")
    row.get_by_role("button", name=f"Edit the limits of key {label}").click()
    page.get_by_label("Requests per minute").fill("")
    page.get_by_label("Tokens per day").fill("1000")
    page.get_by_label("Models (comma-separated patterns)").fill("gemini-2.0-*")
    page.get_by_role("button", name="Save the limits").click()
    expect(row).to_contain_text("daily_tokens 1000; models gemini-2.0-*")
    changed = next(k for k in api(stack, "/api/keys")["data"] if k["label"] == label)
    assert (changed["rpm"], changed["daily_tokens"], changed["models"]) == (None, 1000, ["gemini-2.0-*"])
    row.get_by_role("button", name=f"Revoke key {label}").click()
    expect(page.locator("#keys tbody")).not_to_contain_text(label)
    assert label not in [k["label"] for k in api(stack, "/api/keys")["data"]]


def test_draining_and_enabling_an_account_shows_live(stack: Stack, page: Page) -> None:
    signed_in(page, stack)
    name = api(stack, "/api/accounts")["data"][0]["name"]
    row = page.locator("#accounts tbody").get_by_role("row").filter(has_text=name)
    try:
        row.get_by_role("button", name=f"Drain account {name}").click()
        expect(row).to_contain_text("disabled", timeout=LIVE_MS)
        assert api(stack, "/api/accounts")["data"][0]["state"] in ("disabled", "draining")
    finally:
        row.get_by_role("button", name=f"Enable account {name}").click()
    expect(row.get_by_role("button", name=f"Drain account {name}")).to_be_visible(timeout=30_000)
    stack.wait_healthy(60)


def test_a_running_request_is_cancelled_from_the_queue_panel(stack: Stack, page: Page) -> None:
    signed_in(page, stack)
    stack.sim_inspect("config", method="POST", json={"chunk_delay_ms": 400})
    result: dict[str, requests.Response] = {}
    worker = threading.Thread(target=lambda: result.setdefault("r", chat(stack, "#sim:words=200 long")))
    worker.start()
    queued = (
        page.locator("#queue tbody")
        .get_by_role("row")
        .filter(has=page.get_by_role("button", name=re.compile("^Cancel request")))
    )
    expect(queued).to_have_count(1, timeout=LIVE_MS)
    queued.get_by_role("button", name=re.compile("^Cancel request")).click()
    worker.join(60)
    cancelled = result["r"]
    assert cancelled.status_code == 499, cancelled.text
    assert cancelled.json()["error"]["code"] == "request_cancelled"
    expect(page.locator("#queue tbody")).to_contain_text("the queue is empty", timeout=LIVE_MS)


def test_restarting_the_stream_proxy_shows_its_new_pid(stack: Stack, page: Page) -> None:
    signed_in(page, stack)
    before = stack.pid("stream_proxy")
    page.get_by_role("button", name="Restart the stream proxy").click()
    expect(page.locator("#action-result")).to_contain_text("Restart the stream proxy: done")
    row = page.locator("#processes tbody").get_by_role("row").filter(has_text="stream_proxy")
    expect(row).not_to_contain_text(f"pid {before}", timeout=30_000)
    expect(row).to_contain_text("ok", timeout=30_000)
    stack.wait_healthy(60)
    assert stack.pid("stream_proxy") != before


def test_the_doctor_report_downloads(stack: Stack, page: Page) -> None:
    signed_in(page, stack)
    with page.expect_download(timeout=240_000) as info:
        page.get_by_role("button", name="Download a doctor report").click()
    report = json.loads(open(info.value.path()).read())
    assert report["ok"] is True, report
    assert info.value.suggested_filename.startswith("doctor-")


def test_every_control_is_labelled_and_reachable_by_keyboard(stack: Stack, page: Page) -> None:
    page.goto(stack.base_url + "/dashboard")
    page.keyboard.press("Tab")  # the key field has the focus already; Tab goes on to the button
    page.get_by_label("Admin key").focus()
    page.keyboard.type(ADMIN_KEY)
    page.keyboard.press("Enter")
    expect(page.locator("#connection")).to_have_text("live", timeout=LIVE_MS)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter((el) => !el.labels || !el.labels.length).map((el) => el.id)"""
    )
    assert unlabelled == []
    nameless = page.evaluate(
        "() => [...document.querySelectorAll('button')].filter((b) => !b.textContent.trim()).length"
    )
    assert nameless == 0
    reached = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate("() => document.activeElement.textContent.trim() || document.activeElement.id")
        )
    assert {
        "Restart the stream proxy",
        "Restart the browser",
        "Download a doctor report",
        "Create the key",
    } <= reached
    page.get_by_label("Label").focus()
    page.keyboard.type("typed-by-keyboard")
    page.keyboard.press("Enter")
    expect(page.locator("#new-key")).to_contain_text("sk-aisp-")
    made = next(k for k in api(stack, "/api/keys")["data"] if k["label"] == "typed-by-keyboard")
    requests.delete(f"{stack.base_url}/api/keys/{made['id']}", headers=ADMIN, timeout=10)


def test_a_failed_request_s_snapshot_and_screenshot_are_shown(stack: Stack, page: Page) -> None:
    failed = chat(stack, "fail #sim:error=internal #sim:words=5")
    assert failed.status_code == 502, failed.text
    request_id = failed.headers["x-request-id"]
    signed_in(page, stack)
    row = page.locator("#snapshots tbody").get_by_role("row").filter(has_text=request_id)
    expect(row).to_contain_text("upstream", timeout=LIVE_MS)
    row.get_by_role("button", name=f"Screenshot of request {request_id}").click()
    image = page.get_by_role("img", name="Screenshot of the page when the request failed")
    expect(image).to_be_visible()
    assert page.evaluate("() => document.querySelector('#snapshot-image').naturalWidth") > 100
    expect(page.locator("#snapshot-caption")).to_contain_text(request_id)


def test_restarting_the_browser_worker_shows_it_come_back(stack: Stack, page: Page) -> None:
    signed_in(page, stack)
    before = stack.pid("browser_worker")
    page.get_by_role("button", name="Restart the browser").click()
    expect(page.locator("#action-result")).to_contain_text("Restart the browser: done")
    row = page.locator("#processes tbody").get_by_role("row").filter(has_text="browser_worker")
    expect(row).to_contain_text("ready", timeout=60_000)
    stack.wait_healthy(60)
    assert stack.pid("browser_worker") != before
    assert chat(stack).status_code == 200
