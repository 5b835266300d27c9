"""Several pages at once (``PAGES_PER_ACCOUNT``): the real stack with three pages, real Chromium and proxy.

Each request holds its answer after the first event until the test releases it (``#sim:hold``), so
"three answers were generating at the same time" is observed, not inferred from timings: all three
are held at once only if three pages run them. Each answer echoes its own prompt with its own nonce,
so one answer reaching another's request (a flow routed to the wrong page) is seen at once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import openai
import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import SHARED_ENV
from tests.e2e.pool_support import account_states, wait_accounts, wait_until, worker

PAGES = 3


@pytest.fixture(scope="module")
def pool_stack() -> Iterator[Stack]:
    with Stack(env={**SHARED_ENV, "PAGES_PER_ACCOUNT": str(PAGES)}) as running:
        yield running


def held_accounts(stack: Stack) -> dict[str, str]:
    return {r["held"]: r["account"] for r in stack.sim_requests() if r.get("held")}


def held(stack: Stack) -> set[str]:
    return {r["held"] for r in stack.sim_requests() if r.get("held")}


async def wait_held(stack: Stack, names: set[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not names <= held(stack):
        assert time.monotonic() < deadline, f"held: {held(stack)}, wanted {names}"
        await asyncio.sleep(0.2)  # polling the simulator's record of an outside process


async def test_three_pages_generate_at_once_and_every_answer_reaches_its_own_request(pool_stack: Stack):
    stack = pool_stack.for_test()
    status = stack.get("/health")[1]
    assert status["components"]["worker"]["pages"] == PAGES, status
    nonces = {f"h{i}": secrets.token_hex(6) for i in range(PAGES)}
    prompts = {
        name: f"#sim:echo #sim:chunks=6 #sim:delay_ms={20 + 15 * i} #sim:hold={name} nonce {nonce} "
        + " ".join(f"w{i}-{k}" for k in range(40))
        for i, (name, nonce) in enumerate(nonces.items())
    }

    async with openai.AsyncOpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
    ) as client:

        async def ask(name: str) -> str:
            stream = await client.chat.completions.create(
                model="gemini-2.5-pro",
                messages=[{"role": "user", "content": prompts[name]}],
                stream=True,
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        answers = {name: asyncio.create_task(ask(name)) for name in prompts}
        await wait_held(stack, set(prompts))  # all three generating at the same time
        for name in prompts:
            stack.sim_inspect("release", method="POST", json={"hold": name})
        results = {name: await task for name, task in answers.items()}
    for name, text in results.items():  # the simulator echoes the whole prompt text the page sent
        assert text == f"User:\n{prompts[name]}\n", f"{name} got another answer: {text[:80]!r}"


@pytest.fixture(scope="module")
def two_by_two() -> Iterator[Stack]:
    with Stack(env={**SHARED_ENV, "DEMO_ACCOUNTS": "2", "PAGES_PER_ACCOUNT": "2"}) as running:
        yield running


async def test_200_requests_from_20_clients_on_two_accounts_of_two_pages_lose_nothing(two_by_two: Stack):
    """DEMO_ACCOUNTS=2 PAGES_PER_ACCOUNT=2: four pages of two accounts; 20 clients send 10 requests each, every
    one answered exactly once with its own text, by both accounts."""
    stack = two_by_two.for_test()
    worker = stack.get("/health")[1]["components"]["worker"]
    assert worker["pages"] == 4 and [a["name"] for a in worker["accounts"]] == ["demo", "demo2"]

    async with openai.AsyncOpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=300
    ) as client:

        async def one_client(c: int) -> list[tuple[str, str]]:
            out = []
            for k in range(10):
                tag = f"c{c}-r{k}-{secrets.token_hex(4)}"
                answer = await client.chat.completions.create(
                    model="gemini-2.0-flash", messages=[{"role": "user", "content": f"#sim:echo {tag}"}]
                )
                out.append((tag, answer.choices[0].message.content or ""))
            return out

        results = [
            pair for batch in await asyncio.gather(*(one_client(c) for c in range(20))) for pair in batch
        ]
    assert len(results) == 200
    assert all(text == f"User:\n#sim:echo {tag}\n" for tag, text in results)
    records = stack.sim_requests()
    tags = [
        r["prompt"].split("#sim:echo ")[-1].strip() for r in records if "#sim:echo c" in r.get("prompt", "")
    ]
    assert sorted(tags) == sorted(tag for tag, _ in results), "each request reached AI Studio exactly once"
    assert {r.get("account") for r in records} == {"demo@example.com", "demo2@example.com"}


async def test_a_rate_limited_account_cools_for_a_minute_then_serves_with_one_page_first_then_all(
    two_by_two: Stack,
):
    """demo2 answers the per-minute 429: it cools down for a minute (``/health``: cooling, with its end) while
    demo serves; afterwards it takes one request first and only once that succeeded both its pages serve.
    Where each request runs is seen in the simulator (each is held after its first event)."""
    stack = two_by_two.for_test()
    await wait_accounts(stack, {"demo": "ready", "demo2": "ready"})
    stack.sim_inspect("config", method="POST", json={"rate_limited_accounts": {"demo2@example.com": 600}})
    run = secrets.token_hex(4)

    async with openai.AsyncOpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=300
    ) as client:

        async def ask(hold: str) -> None:
            prompt = f"#sim:echo #sim:chunks=4 #sim:hold={hold} ramp {run} {hold}"
            answer = await client.chat.completions.create(
                model="gemini-2.5-pro", messages=[{"role": "user", "content": prompt}]
            )
            assert answer.choices[0].message.content == f"User:\n{prompt}\n"

        # Four at once on demo's two pages and demo2: whatever reaches demo2 meets the limit and moves to demo.
        burst = [asyncio.create_task(ask(f"burst{i}-{run}")) for i in range(4)]
        await wait_until(
            lambda: any(r["status"] == 429 for r in stack.sim_requests()), "a request meeting the rate limit"
        )
        assert {r["account"] for r in stack.sim_requests() if r["status"] == 429} == {"demo2@example.com"}
        demo2 = next(a for a in worker(stack)["accounts"] if a["name"] == "demo2")
        assert demo2["state"] == "cooling" and 30 <= demo2["cooling_until"] - time.time() <= 60
        for i in range(4):  # the gates open before they are reached: the answers run through
            stack.sim_inspect("release", method="POST", json={"hold": f"burst{i}-{run}"})
        await asyncio.gather(*burst)
        # The limit is lifted only now: a request already on its way to demo2's other page when the first
        # 429 came (a slow fill on a loaded machine) meets the limit too and moves, as the first did.
        stack.sim_inspect("config", method="POST", json={"rate_limited_accounts": {}})
        assert set(held_accounts(stack).values()) == {"demo@example.com"}  # all four answered by demo

        # The minute is over: demo2 ramps up.
        await wait_until(lambda: account_states(stack)["demo2"] != "cooling", "the end of the cooldown", 90)
        names = [f"ramp{i}-{run}" for i in range(4)]
        ramp = [asyncio.create_task(ask(name)) for name in names]
        await wait_until(lambda: len(set(names) & set(held_accounts(stack))) == 3, "three answers held")
        where = held_accounts(stack)
        on_demo2 = [n for n in names if where.get(n) == "demo2@example.com"]
        waiting = [n for n in names if n not in where]
        assert len(on_demo2) == 1, where  # one page of demo2 first
        await wait_until(
            lambda: (
                [s["state"] for s in worker(stack)["slots"] if s["account"] == "demo2"].count("ready") == 1
            ),
            "demo2's second page started and idle",
        )
        assert not set(waiting) & set(held_accounts(stack))  # ... which takes nothing while ramping
        stack.sim_inspect("release", method="POST", json={"hold": on_demo2[0]})
        fifth = f"ramp4-{run}"
        ramp.append(asyncio.create_task(ask(fifth)))
        await wait_until(lambda: {waiting[0], fifth} <= set(held_accounts(stack)), "both on demo2's pages")
        where = held_accounts(stack)
        assert where[waiting[0]] == where[fifth] == "demo2@example.com"  # then both pages at once
        for name in [*names, fifth]:
            stack.sim_inspect("release", method="POST", json={"hold": name})
        await asyncio.gather(*ramp)


async def test_when_every_account_is_used_up_the_api_answers_429_with_the_earliest_recovery(
    two_by_two: Stack,
):
    """Both accounts out of quota (the module's last test: it leaves them cooling): the first request meets
    both quota errors and gets 429; the next is refused at once (nothing reaches AI Studio) with Retry-After
    = the earliest recovery (an hour), and /health shows the accounts cooling."""
    stack = two_by_two.for_test()
    await wait_accounts(stack, {"demo": "ready", "demo2": "ready"})  # not cooling from an earlier test
    stack.sim_inspect(
        "config", method="POST", json={"exhausted_accounts": ["demo@example.com", "demo2@example.com"]}
    )
    with openai.OpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
    ) as client:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(
                model="gemini-2.0-flash", messages=[{"role": "user", "content": "one"}]
            )
        asked = len(stack.sim_requests())
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(
                model="gemini-2.0-flash", messages=[{"role": "user", "content": "two"}]
            )
    assert len(stack.sim_requests()) == asked
    assert 3500 <= int(refused.value.response.headers["retry-after"]) <= 3600
    assert refused.value.body["code"] == "all_accounts_cooling"
    accounts = stack.get("/health")[1]["components"]["worker"]["accounts"]
    assert {a["name"]: a["state"] for a in accounts} == {"demo": "cooling", "demo2": "cooling"}
