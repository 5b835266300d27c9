"""Load from outside: 200 short requests from 20 clients, FIFO order, a consistent queue, bounded memory."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from aistudio_sim.stack import PROGRAMS, Stack
from tests.e2e.conftest import PLAIN_MODEL

CLIENTS = 20
PER_CLIENT = 10
MEMORY_BOUND = 1.5 * 2**30  # bytes, the three programs with their children (Pss)


def body(prompt: str) -> dict[str, Any]:
    return {"model": PLAIN_MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 20}


async def ask(session: aiohttp.ClientSession, stack: Stack, req_id: str, extra: str = "") -> tuple[int, dict]:
    async with session.post(
        stack.base_url + "/v1/chat/completions",
        json=body(f"{req_id} {extra}".strip()),
        headers={"x-request-id": req_id},
    ) as resp:
        payload = await resp.json(content_type=None)
        assert resp.headers.get("x-client-request-id") == req_id  # echoed; the server's id is its own
        assert (
            payload.get("id", "chatcmpl-" + resp.headers["x-request-id"])
            == "chatcmpl-" + resp.headers["x-request-id"]
        )
        return resp.status, payload


async def queue_rows(session: aiohttp.ClientSession, stack: Stack) -> list[dict[str, Any]]:
    async with session.get(stack.base_url + "/v1/queue") as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["length"] == len(data["data"])
    return data["data"]


def check_snapshot(rows: list[dict[str, Any]]) -> None:
    """Positions 0..n-1 in order, no id twice, only the head may be running."""
    ids = [r["id"] for r in rows]
    assert [r["position"] for r in rows] == list(range(len(rows))), rows
    assert len(set(ids)) == len(ids), rows
    assert all(r["state"] == "queued" for r in rows[1:]), rows
    if rows:
        assert rows[0]["state"] in ("running", "queued", "draining"), rows


def memory(stack: Stack) -> dict[str, int]:
    """Pss of each program with its children (the worker's Chromium included), in bytes."""
    return {p: stack.rss(p) for p in PROGRAMS}


def show(label: str, stack: Stack, mem: dict[str, int]) -> str:
    own = {p: stack.rss(p, children=False, proportional=False) for p in PROGRAMS}
    parts = ", ".join(
        f"{p} {own[p] / 2**20:.0f} MiB RSS / {v / 2**20:.0f} MiB with children" for p, v in mem.items()
    )
    return f"{label}: {parts}; total {sum(mem.values()) / 2**20:.0f} MiB (Pss, children included)"


@pytest.mark.timeout(900)
async def test_two_hundred_requests_from_twenty_clients_are_each_answered_once_in_fifo_order(stack: Stack):
    """Every request answered exactly once with its own answer, in queue order; /v1/queue always consistent."""
    run = uuid.uuid4().hex[:8]
    before = memory(stack)
    print("\n" + show("memory before", stack, before))
    snapshots: list[list[dict[str, Any]]] = []
    stop_sampling = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=600)

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CLIENTS + 5), timeout=timeout
    ) as session:

        async def sampler() -> None:
            while not stop_sampling.is_set():
                rows = await queue_rows(session, stack)
                check_snapshot(rows)
                snapshots.append(rows)
                await asyncio.sleep(0.05)  # sampling rate of the observer, not synchronisation

        async def client(n: int) -> list[tuple[str, int, dict]]:
            results = []
            for i in range(PER_CLIENT):
                req_id = f"load-{run}-{n:02d}-{i:02d}"
                status, payload = await ask(session, stack, req_id)
                results.append((req_id, status, payload))
            return results

        watcher = asyncio.create_task(sampler())
        started = time.monotonic()
        per_client = await asyncio.gather(*(client(n) for n in range(CLIENTS)))
        elapsed = time.monotonic() - started
        stop_sampling.set()
        await watcher
        assert await queue_rows(session, stack) == []

    results = [r for rs in per_client for r in rs]
    assert len(results) == CLIENTS * PER_CLIENT
    for req_id, status, payload in results:
        assert status == 200, (req_id, payload)
        assert f"You said: {req_id}" in payload["choices"][0]["message"]["content"], (req_id, payload)

    records = [r for r in stack.sim_requests() if f"load-{run}-" in r["prompt"]]
    served = [r["prompt"].split(f"load-{run}-", 1)[1][:5] for r in records]
    served = [f"load-{run}-{s}" for s in served]
    assert sorted(served) == sorted(r[0] for r in results), "some request reached the page twice or never"
    order = {req_id: n for n, req_id in enumerate(served)}
    seen_together = 0
    for rows in snapshots:
        positions = [order[r["client_request_id"]] for r in rows if r["client_request_id"] in order]
        assert positions == sorted(positions), f"queue order {rows} differs from the order served"
        seen_together += max(0, len(positions) - 1)
    assert len(snapshots) > 10 and seen_together > 50, "the queue was never observed holding requests"
    for n in range(CLIENTS):
        mine = [order[f"load-{run}-{n:02d}-{i:02d}"] for i in range(PER_CLIENT)]
        assert mine == sorted(mine)

    after = memory(stack)
    print(show("memory after ", stack, after))
    print(
        f"200 requests in {elapsed:.1f} s ({200 / elapsed:.1f} req/s); {len(snapshots)} queue snapshots, "
        f"longest queue {max(len(s) for s in snapshots)}"
    )
    assert sum(after.values()) < MEMORY_BOUND, show("memory after", stack, after)


async def test_requests_are_answered_in_order_of_arrival(stack: Stack):
    """Requests that arrive one after another behind a slow one reach the page in exactly that order."""
    run = uuid.uuid4().hex[:8]
    ids = [f"fifo-{run}-{n}" for n in range(8)]
    async with aiohttp.ClientSession() as session:
        head = asyncio.create_task(
            ask(session, stack, f"fifo-{run}-head", "#sim:words=40 #sim:chunks=20 #sim:delay_ms=150")
        )
        pending = []
        for n, req_id in enumerate(ids):
            pending.append(asyncio.create_task(ask(session, stack, req_id)))
            deadline = time.monotonic() + 20
            while True:  # the next one is sent only once this one is in the queue: arrival order is known
                rows = await queue_rows(session, stack)
                check_snapshot(rows)
                if req_id in [r["client_request_id"] for r in rows]:
                    break
                assert time.monotonic() < deadline, f"{req_id} never appeared in /v1/queue"
                await asyncio.sleep(0.02)  # polling an outside condition with a deadline
            assert [r["client_request_id"] for r in rows][-(n + 1) :] == ids[: n + 1]
        results = await asyncio.gather(head, *pending)
    assert all(status == 200 for status, _ in results), results
    served = [r["prompt"] for r in stack.sim_requests()]
    assert [next(i for i in ids if i in p) for p in served if f"fifo-{run}-" in p and "head" not in p] == ids
