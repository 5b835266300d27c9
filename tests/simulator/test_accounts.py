"""Several accounts on one simulator (issue 17): per-account quota, rate-limit, permission and login errors set through
`/__sim__/config`, the account recorded for every request, and two signed-in Chromium contexts of
different accounts generating at once with interleaved streams."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from aistudio_sim import wire
from tests.requirements import CHROMIUM, needs
from tests.simulator.conftest import REPO_ROOT, SimProcess
from tests.simulator.test_server import GENERATE, NEW_CHAT, generate, generate_body, parse_body, texts

FIRST = "demo@example.com"
SECOND = "demo2@example.com"


def _error(raw: bytes) -> tuple[int, str]:
    body = json.loads(raw)
    return body[0], body[1]


def _bad_config(sim: SimProcess, update: dict) -> str:
    with pytest.raises(AssertionError, match="HTTP 400") as caught:
        sim.inspect("config", update)
    return str(caught.value)


async def test_an_exhausted_account_gets_the_quota_error_until_reset(sim: SimProcess) -> None:
    second = sim.cookie_header(SECOND)
    sim.config(exhausted_accounts=[SECOND])
    status, _, raw = await generate(sim, generate_body("hi"), cookie=second)
    assert status == 429 and _error(raw) == (wire.CODE_RESOURCE_EXHAUSTED, wire.QUOTA_MESSAGE)
    status, _, _ = await generate(sim, generate_body("hi"))
    assert status == 200
    assert [r["account"] for r in sim.inspect("requests")] == [SECOND, FIRST]
    sim.reset()
    assert sim.config()["exhausted_accounts"] == []
    status, _, _ = await generate(sim, generate_body("hi"), cookie=second)
    assert status == 200


async def test_a_rate_limited_account_gets_the_rate_limit_error_for_its_seconds(sim: SimProcess) -> None:
    second = sim.cookie_header(SECOND)
    set_at = time.monotonic()
    sim.config(rate_limited_accounts={SECOND: 1})
    status, _, raw = await generate(sim, generate_body("hi"), cookie=second)
    assert status == 429 and _error(raw) == (wire.CODE_RESOURCE_EXHAUSTED, wire.RATE_LIMIT_MESSAGE)
    assert (await generate(sim, generate_body("hi")))[0] == 200  # the other account is served
    while status == 429:  # the limit is a time span: poll the account until it is served again
        assert time.monotonic() - set_at < 5, "still rate-limited after 5 s"
        status, _, _ = await generate(sim, generate_body("hi"), cookie=second)
        if status == 429:
            await asyncio.sleep(0.1)
    assert status == 200 and time.monotonic() - set_at >= 1


async def test_reset_ends_a_rate_limit(sim: SimProcess) -> None:
    second = sim.cookie_header(SECOND)
    sim.config(rate_limited_accounts={SECOND: 600})
    assert (await generate(sim, generate_body("hi"), cookie=second))[0] == 429
    sim.reset()
    assert sim.config()["rate_limited_accounts"] == {}
    assert (await generate(sim, generate_body("hi"), cookie=second))[0] == 200


async def test_a_denied_account_gets_the_permission_error_until_reset(sim: SimProcess) -> None:
    second = sim.cookie_header(SECOND)
    sim.config(denied_accounts=[SECOND])
    status, _, raw = await generate(sim, generate_body("hi"), cookie=second)
    assert status == 403 and _error(raw) == (wire.CODE_PERMISSION_DENIED, wire.PERMISSION_MESSAGE)
    assert (await generate(sim, generate_body("hi")))[0] == 200  # the other account is served
    assert [(r["account"], r["status"]) for r in sim.inspect("requests")] == [(SECOND, 403), (FIRST, 200)]
    sim.reset()
    assert (await generate(sim, generate_body("hi"), cookie=second))[0] == 200


async def _page_status(sim: SimProcess, cookie: str) -> tuple[int, str]:
    async with sim.client_session() as s:
        async with s.get(NEW_CHAT, headers={"Cookie": cookie}, allow_redirects=False) as r:
            return r.status, r.headers.get("Location", "")


async def test_an_expired_account_loses_its_session_at_its_next_generation_and_goes_to_sign_in(
    sim: SimProcess,
) -> None:
    """``expired_accounts``: the account's GenerateContent gets the 401 and ends its session, so its page
    is sent to the sign-in page from then on (SPEC 1.2); the other account and a new session after reset
    are served."""
    second = sim.cookie_header(SECOND)
    sim.config(expired_accounts=[SECOND])
    assert (await _page_status(sim, second))[0] == 200  # the session lasts until its next generation
    status, _, raw = await generate(sim, generate_body("hi"), cookie=second)
    assert status == 401 and _error(raw) == (wire.CODE_UNAUTHENTICATED, wire.UNAUTHENTICATED_MESSAGE)
    assert [(r["account"], r["status"]) for r in sim.inspect("requests")] == [(SECOND, 401)]
    status, location = await _page_status(sim, second)
    assert status == 302 and location.startswith("https://accounts.google.com/v3/signin/")
    assert (await generate(sim, generate_body("hi")))[0] == 200  # the other account is served
    expired = [e for e in sim.inspect("events") if e["kind"] == "session_expired"]
    assert [(e["account"], e["reason"]) for e in expired] == [(SECOND, "expired_accounts")]
    sim.reset()
    assert (await generate(sim, generate_body("hi"), cookie=sim.cookie_header(SECOND)))[0] == 200


def test_unknown_accounts_and_bad_values_are_refused_by_name(sim: SimProcess) -> None:
    sim.cookie_header(SECOND)
    assert "nobody@example.com" in _bad_config(sim, {"exhausted_accounts": ["nobody@example.com"]})
    assert "ghost@example.com" in _bad_config(sim, {"rate_limited_accounts": {"ghost@example.com": 5}})
    assert "exhausted_accounts" in _bad_config(sim, {"exhausted_accounts": SECOND})
    assert "rate_limited_accounts" in _bad_config(sim, {"rate_limited_accounts": [SECOND]})
    for key in ("denied_accounts", "expired_accounts"):
        assert "nobody@example.com" in _bad_config(sim, {key: ["nobody@example.com"]})
        assert key in _bad_config(sim, {key: SECOND})
    for seconds in (0, -3, "30", True, None):
        assert SECOND in _bad_config(sim, {"rate_limited_accounts": {SECOND: seconds}})
    assert sim.config()["exhausted_accounts"] == [] and sim.config()["rate_limited_accounts"] == {}
    assert sim.config()["denied_accounts"] == [] and sim.config()["expired_accounts"] == []


@needs(CHROMIUM.exists(), "Debian Chromium")
async def test_two_accounts_generate_at_once_with_interleaved_streams(sim: SimProcess) -> None:
    """Two browser contexts, one per account, each fetching a slow stream at the same time: both
    complete with their own nonce, each request is recorded with its account, and the two streams
    overlap in time (one is not served after the other)."""
    from playwright.async_api import async_playwright

    fetch = """async ([url, body]) => {
        const r = await fetch(url, {method: 'POST', credentials: 'include', body,
            headers: {'content-type': 'application/json+protobuf', 'x-goog-authuser': '0'}});
        const reader = r.body.getReader(); const dec = new TextDecoder(); let text = '';
        for (;;) { const {done, value} = await reader.read(); if (done) break;
                   text += dec.decode(value, {stream: true}); }
        return {status: r.status, text};
    }"""
    nonces = {FIRST: "nonce-alpha-7341", SECOND: "nonce-beta-2958"}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[f"--host-resolver-rules={sim.host_resolver_rules}"],
        )
        try:
            pages = {}
            for email in nonces:
                ctx = await browser.new_context(
                    ignore_https_errors=True, storage_state=sim.storage_state(email)
                )
                pages[email] = await ctx.new_page()
                await pages[email].goto("https://aistudio.google.com/prompts/new_chat")
            prompts = {e: f"#sim:echo {n} #sim:chunks=12 #sim:delay_ms=120" for e, n in nonces.items()}
            results = await asyncio.gather(
                *(pages[e].evaluate(fetch, [GENERATE, generate_body(prompts[e]).decode()]) for e in nonces)
            )
        finally:
            await browser.close()
    for email, result in zip(nonces, results, strict=True):
        assert result["status"] == 200
        answer = texts(parse_body(result["text"].encode())[0])[1]
        assert nonces[email] in answer
        assert all(other not in answer for e, other in nonces.items() if e != email)
    records = {r["account"]: r for r in sim.inspect("requests")}
    assert set(records) == set(nonces)
    for email, rec in records.items():
        assert rec["ended"] == "complete" and nonces[email] in rec["prompt"]
    a, b = records[FIRST], records[SECOND]
    assert a["first_byte_at"] < b["last_byte_at"] and b["first_byte_at"] < a["last_byte_at"]


async def test_demo_profiles_are_one_private_login_per_account_told_apart_by_cookies(
    sim: SimProcess, tmp_path: Path
) -> None:
    """`demo-profile FOLDER --accounts 3` (what demo mode runs for DEMO_ACCOUNTS=3): demo.json, demo2.json,
    demo3.json, each 0600 with cookies of its own; the running simulator records each one's requests as
    its account and can exhaust one of them."""
    folder = tmp_path / "auth" / "active"
    written = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "aistudio_sim", "demo-profile", str(folder), "--accounts", "3"),
        *("--state-dir", str(sim.state_dir)),
        cwd=REPO_ROOT,
    )
    assert await written.wait() == 0
    emails = ["demo@example.com", "demo2@example.com", "demo3@example.com"]
    assert sorted(p.name for p in folder.iterdir()) == ["demo.json", "demo2.json", "demo3.json"]
    assert folder.stat().st_mode & 0o777 == 0o700
    cookies = {}
    for email in emails:
        path = folder / f"{email.split('@')[0]}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        saved = json.loads(path.read_text())["cookies"]
        cookies[email] = "; ".join(f"{c['name']}={c['value']}" for c in saved)
    assert len(set(cookies.values())) == 3
    sim.config(exhausted_accounts=["demo3@example.com"])
    statuses = [(await generate(sim, generate_body("hi"), cookie=cookies[e]))[0] for e in emails]
    assert statuses == [200, 200, 429]
    assert [r["account"] for r in sim.inspect("requests")] == emails
