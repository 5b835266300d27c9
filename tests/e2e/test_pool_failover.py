"""Failover before the first token, on the real stack (five accounts of one page, real Chromium and proxy).

Each test gives the account its request goes to first an error of one kind through the simulator's config
(a used-up quota, a rate limit, a permission error, an expired login): the client must get the whole answer
as if nothing happened, and the simulator's records must show that very request meeting the error on that
account and then being answered by another. Quota, rate limit and permission errors leave that account
cooling (an hour, a minute, five minutes) and a login error leaves it signed out until its login file is
written again (the test does that), so the tests are independent as long as two accounts can still serve:
five accounts give each kind its own.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import SHARED_ENV
from tests.e2e.pool_support import (
    attempts,
    email,
    restore_login,
    wait_accounts,
    wait_until,
    worker,
)

MODEL = "gemini-2.5-pro"  # the simulator's default: every page starts on it, so the first free page is taken


@pytest.fixture(scope="module")
def five_accounts() -> Iterator[Stack]:
    with Stack(env={**SHARED_ENV, "DEMO_ACCOUNTS": "5"}) as running:
        yield running


def first_free_account(stack: Stack) -> str | None:
    """Once no page is starting or busy: the account of the first ready page (the one a request takes, all
    pages being on the same model), provided another ready page can take the request over."""
    slots = worker(stack)["slots"]
    if any(s["state"] in ("starting", "busy", "standby") for s in slots):
        return None
    ready = [s["account"] for s in slots if s["state"] == "ready"]
    return ready[0] if len(ready) >= 2 else None


async def ask(stack: Stack, prompt: str) -> str:
    """The streamed answer's text, through the official SDK."""
    async with openai.AsyncOpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
    ) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


def _config(kind: str, address: str) -> dict[str, Any]:
    return {
        "quota": {"exhausted_accounts": [address]},
        "rate_limit": {"rate_limited_accounts": {address: 600}},
        "permission": {"denied_accounts": [address]},
        "login": {"expired_accounts": [address]},
    }[kind]


@pytest.mark.parametrize(
    ("kind", "status", "after", "cooldown"),
    [
        ("quota", 429, "cooling", 3600),
        ("rate_limit", 429, "cooling", 60),
        ("permission", 403, "cooling", 300),
        ("login", 401, "login_required", None),
    ],
)
async def test_an_account_error_before_the_first_token_is_answered_by_another_account_unseen_by_the_client(
    five_accounts: Stack, kind: str, status: int, after: str, cooldown: float | None
):
    """The account's state after: cooling for as long as the error says, or signed out."""
    stack = five_accounts.for_test()
    bad = await wait_until(lambda: first_free_account(stack), "a settled pool with two ready pages")
    stack.sim_inspect("config", method="POST", json=_config(kind, email(bad)))
    tag = secrets.token_hex(6)
    prompt = f"#sim:echo #sim:chunks=5 failover {kind} {tag}"
    try:
        assert await ask(stack, prompt) == f"User:\n{prompt}\n"
        path = attempts(stack, tag)
        assert len(path) == 2 and path[0] == (bad, status), path
        assert path[1][0] != bad and path[1][1] == 200, path
        await wait_accounts(stack, {bad: after}, timeout=30)  # signed out: once its new page met the sign-in
        until = next(a for a in worker(stack)["accounts"] if a["name"] == bad)["cooling_until"]
        if cooldown is None:
            assert until is None
        else:
            assert cooldown - 30 <= until - time.time() <= cooldown, until - time.time()
    finally:
        if kind == "login":  # a new login for the account: its page comes back
            stack.sim_reset()
            restore_login(stack, bad)
            await wait_accounts(stack, {bad: "ready"})
