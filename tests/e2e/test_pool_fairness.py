"""Fairness between API keys on the real stack: one key's backlog on the single page does not starve
another key's one request (the shared demo stack: one account, one page, admin routes on)."""

from __future__ import annotations

import asyncio
import secrets

import openai
import requests

from aistudio_sim.stack import Stack
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.pool_support import release, wait_held, wait_until

MODEL = "gemini-2.0-flash"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def create_key(stack: Stack, label: str) -> dict[str, str]:
    made: dict[str, str] = requests.post(
        f"{stack.base_url}/api/keys", json={"label": label}, headers=ADMIN, timeout=30
    ).json()
    return made


def delete_key(stack: Stack, key_id: str) -> None:
    requests.delete(f"{stack.base_url}/api/keys/{key_id}", headers=ADMIN, timeout=30).raise_for_status()


def queued(stack: Stack) -> int:
    """Requests queued or running (``/v1/queue``, as the admin sees it)."""
    return int(requests.get(f"{stack.base_url}/v1/queue", headers=ADMIN, timeout=30).json()["length"])


async def test_another_keys_request_is_served_before_the_rest_of_one_keys_backlog(stack: Stack):
    """Key A has one answer running (held) and three waiting; key B then sends one. Keys take turns: B's
    request is served right after A's next one, before the rest of A's backlog (first in, first out would
    serve it last)."""
    made = [create_key(stack, label) for label in ("fair-a", "fair-b")]
    run = secrets.token_hex(4)

    try:
        async with (
            openai.AsyncOpenAI(
                base_url=stack.base_url + "/v1", api_key=made[0]["key"], max_retries=0, timeout=120
            ) as key_a,
            openai.AsyncOpenAI(
                base_url=stack.base_url + "/v1", api_key=made[1]["key"], max_retries=0, timeout=120
            ) as key_b,
        ):

            async def ask(client: openai.AsyncOpenAI, label: str, hold: str = "") -> str:
                prompt = f"#sim:echo {hold} fair {run} {label}"
                answer = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompt}]
                )
                assert answer.choices[0].message.content == f"User:\n{prompt}\n"
                return label

            tasks = [asyncio.create_task(ask(key_a, "a1", hold=f"#sim:hold=fair-{run}"))]
            await wait_held(stack, {f"fair-{run}"})
            for n, label in enumerate(("a2", "a3", "a4"), start=2):
                tasks.append(asyncio.create_task(ask(key_a, label)))
                await wait_until(lambda n=n: queued(stack) == n, f"{label} queued")  # type: ignore[misc]
            tasks.append(asyncio.create_task(ask(key_b, "b1")))
            await wait_until(lambda: queued(stack) == 5, "b1 queued")
            release(stack, f"fair-{run}")
            await asyncio.gather(*tasks)
    finally:
        for key in made:
            delete_key(stack, key["id"])
    served = [
        r["prompt"].split()[-1] for r in stack.sim_requests() if f"fair {run} " in (r.get("prompt") or "")
    ]
    assert served == ["a1", "a2", "b1", "a3", "a4"]
