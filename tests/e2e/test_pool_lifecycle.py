"""Accounts changing under load, on the real stack (two accounts of one page each, real Chromium and proxy):
draining an account with a request running on it, one account's login expiring while the other keeps
serving, a page crash on one account while the other streams.

A request held in the simulator (``#sim:hold``, after its first event) keeps one page busy, so the next
request can only go to the other account's page: where each request runs is decided, not guessed, and the
simulator's records say which account each request reached. Every answer echoes its own prompt with its
own nonce, so a lost, cut or crossed answer is seen at once. Each test leaves both accounts serving.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Iterator

import openai
import pytest
import requests

from aistudio_sim.stack import Stack
from tests.e2e.pool_support import (
    account_states,
    attempts,
    email,
    release,
    renderers,
    restore_login,
    wait_accounts,
    wait_held,
    wait_until,
    worker,
)

ADMIN_KEY = "e2e-pool-admin-0123456789"
MODEL = "gemini-2.5-pro"
ACCOUNTS = ("demo", "demo2")


@pytest.fixture(scope="module")
def two_accounts() -> Iterator[Stack]:
    # The default silence timeout: answers stay held while a test changes accounts around them.
    with Stack(env={"DEMO_ACCOUNTS": "2", "ADMIN_KEY": ADMIN_KEY}) as running:
        yield running


@pytest.fixture
async def stack(two_accounts: Stack) -> Stack:
    """The module's stack, reset, with both accounts' pages ready."""
    ready = two_accounts.for_test()
    await wait_accounts(ready, dict.fromkeys(ACCOUNTS, "ready"))
    return ready


def echo(label: str, hold: str | None = None, extra: str = "") -> tuple[str, str]:
    """A prompt whose answer is itself, in several pieces (held after its first event), and its nonce."""
    nonce = secrets.token_hex(6)
    directives = f"#sim:echo #sim:chunks=6 {extra}" + (f" #sim:hold={hold}" if hold else "")
    return f"{directives} {label} {nonce} " + " ".join(f"{label}-{k}" for k in range(30)), nonce


def answer_of(prompt: str) -> str:
    return f"User:\n{prompt}\n"


async def ask(stack: Stack, prompt: str) -> str:
    async with openai.AsyncOpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
    ) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


def account_action(stack: Stack, account: str, action: str) -> dict[str, str]:
    resp = requests.post(
        f"{stack.base_url}/api/accounts/{account}/{action}",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, str] = resp.json()
    return body


async def occupy(stack: Stack, hold: str) -> tuple[asyncio.Task[str], str, str, str]:
    """A streamed answer held after its first event on the first free page: (its task, its prompt, the
    account it runs on, the other account)."""
    prompt, _ = echo(hold, hold=hold)
    task = asyncio.create_task(ask(stack, prompt))
    busy = (await wait_held(stack, {hold}))[hold].split("@")[0]
    return task, prompt, busy, next(a for a in ACCOUNTS if a != busy)


async def test_draining_an_account_finishes_its_running_request_starts_none_there_and_enable_brings_it_back(
    stack: Stack,
):
    running, prompt, drained, other = await occupy(stack, "drain")
    assert account_action(stack, drained, "disable")["state"] == "draining"
    assert account_states(stack)[drained] == "draining"
    busy, busy_prompt, on, _ = await occupy(stack, "other-busy")
    assert on == other
    waiting, nonce = echo("after-drain")
    third = asyncio.create_task(ask(stack, waiting))  # no page is free: it waits
    release(stack, "drain")
    assert await running == answer_of(prompt)  # the running answer finished intact
    await wait_accounts(stack, {drained: "disabled"})
    assert not [s for s in worker(stack)["slots"] if s["account"] == drained]  # its page closed
    assert attempts(stack, nonce) == []  # the drained page, free a moment, took no new request
    release(stack, "other-busy")
    assert await busy == answer_of(busy_prompt)
    assert await third == answer_of(waiting)
    assert attempts(stack, nonce) == [(other, 200)]

    assert account_action(stack, drained, "enable")["state"] in ("starting", "ready")
    await wait_accounts(stack, {drained: "ready"})
    held, held_prompt, _, free = await occupy(stack, "after-enable")
    fourth, nonce = echo("enabled-again")
    assert await ask(stack, fourth) == answer_of(fourth)
    assert attempts(stack, nonce) == [(free, 200)]  # both accounts serve again
    release(stack, "after-enable")
    assert await held == answer_of(held_prompt)


async def test_one_accounts_login_expiring_mid_run_leaves_the_other_serving_and_its_running_answer_intact(
    stack: Stack,
):
    running, prompt, serving, expiring = await occupy(stack, "serving")
    stack.sim_inspect("config", method="POST", json={"expired_accounts": [email(expiring)]})
    try:
        second, nonce = echo("meets-the-expiry")
        moved = asyncio.create_task(ask(stack, second))
        await wait_until(lambda: attempts(stack, nonce) == [(expiring, 401)], "the request meets the expiry")
        await wait_accounts(stack, {expiring: "login_required"})
        release(stack, "serving")
        assert await running == answer_of(prompt)  # the other account's running answer, intact
        assert await moved == answer_of(second)  # the request that met the expiry, answered by the other
        assert attempts(stack, nonce) == [(expiring, 401), (serving, 200)]
        third, nonce = echo("signed-out")
        assert await ask(stack, third) == answer_of(third)
        assert attempts(stack, nonce) == [(serving, 200)]  # not sent to the signed-out account
        assert account_states(stack)[expiring] == "login_required"
    finally:
        stack.sim_reset()
        restore_login(stack, expiring)
    await wait_accounts(stack, {expiring: "ready"})


async def renderer_of(stack: Stack, account: str) -> set[int]:
    """The renderer process of ``account``'s page: the one that appears when its page starts again (the
    account is disabled, then enabled)."""
    account_action(stack, account, "disable")
    await wait_accounts(stack, {account: "disabled"})
    before = renderers(stack)
    account_action(stack, account, "enable")
    await wait_accounts(stack, {account: "ready"})
    new = renderers(stack) - before
    assert new, "no renderer process appeared for the page"
    return new


async def test_a_page_crash_before_the_first_token_moves_the_request_while_the_other_page_streams_on(
    stack: Stack,
):
    """The crashed page's request runs again on the other account once it is free; the answer streaming there
    finishes intact; the crashed page is replaced."""
    running, prompt, streaming, crashing = await occupy(stack, "streaming")
    doomed = await renderer_of(stack, crashing)
    second, nonce = echo("crashed", extra="#sim:ttfb_ms=4000")
    moved = asyncio.create_task(ask(stack, second))
    await wait_until(
        lambda: [a for a, _ in attempts(stack, nonce)] == [crashing], "the request reaches the page"
    )
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    await wait_until(lambda: account_states(stack)[crashing] != "busy", "the crash to take the page out")
    release(stack, "streaming")
    assert await running == answer_of(prompt)
    assert await moved == answer_of(second)
    assert [a for a, _ in attempts(stack, nonce)] == [crashing, streaming]
    await wait_accounts(stack, {crashing: "ready"})  # replaced: a new page, in a new renderer
    assert not doomed & renderers(stack)


async def test_a_page_crash_after_output_started_gives_that_request_its_error_while_the_other_streams_on(
    stack: Stack,
):
    """Once some of the answer reached the client the request cannot move: it ends with an error event."""
    running, prompt, streaming, crashing = await occupy(stack, "streaming2")
    doomed = await renderer_of(stack, crashing)
    second, nonce = echo("cut", hold="crash-held")
    got: list[str] = []

    async def read() -> None:
        async with openai.AsyncOpenAI(
            base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
        ) as client:
            stream = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": second}], stream=True
            )
            async for chunk in stream:
                got.extend(c.delta.content or "" for c in chunk.choices)

    reader = asyncio.create_task(read())
    await wait_held(stack, {"crash-held"})
    await wait_until(lambda: got, "the first piece of the answer at the client")
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(openai.APIError) as failed:
        await reader
    assert "crash" in str(failed.value).lower()
    release(stack, "streaming2")
    assert await running == answer_of(prompt)
    assert [a for a, _ in attempts(stack, nonce)] == [crashing]  # not run again
    await wait_accounts(stack, {crashing: "ready"})
    release(stack, "crash-held")
