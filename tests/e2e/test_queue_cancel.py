"""/v1/queue and /v1/cancel with requests in flight; a client leaving mid-stream stops the generation."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL

SLOW = "#sim:words=60 #sim:chunks=30 #sim:delay_ms=150"  # about 4.5 s of streaming


def body(prompt: str, stream: bool = False) -> dict[str, Any]:
    return {"model": PLAIN_MODEL, "stream": stream, "messages": [{"role": "user", "content": prompt}]}


async def post(
    session: aiohttp.ClientSession, stack: Stack, req_id: str, prompt: str, stream: bool = False
) -> tuple[int, str]:
    async with session.post(
        stack.base_url + "/v1/chat/completions", json=body(prompt, stream), headers={"x-request-id": req_id}
    ) as resp:
        return resp.status, await resp.text()


async def queue_rows(session: aiohttp.ClientSession, stack: Stack) -> list[dict[str, Any]]:
    async with session.get(stack.base_url + "/v1/queue") as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["length"] == len(data["data"])
    return data["data"]


async def wait_queue(session: aiohttp.ClientSession, stack: Stack, predicate, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while True:
        rows = await queue_rows(session, stack)
        if predicate(rows):
            return rows
        assert time.monotonic() < deadline, f"queue never reached the expected state: {rows}"
        await asyncio.sleep(0.05)  # polling an outside condition with a deadline


def sim_record(stack: Stack, marker: str) -> dict[str, Any] | None:
    found = [r for r in stack.sim_requests() if marker in r["prompt"]]
    assert len(found) <= 1, f"{marker} reached the simulator {len(found)} times"
    return found[0] if found else None


async def wait_sim_ended(stack: Stack, marker: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = await asyncio.to_thread(sim_record, stack, marker)
        if record is not None and record.get("ended"):
            return record
        assert time.monotonic() < deadline, f"the simulator's stream for {marker} never ended: {record}"
        await asyncio.sleep(0.05)  # polling an outside condition with a deadline


def tag() -> str:
    return uuid.uuid4().hex[:10]


async def test_queue_lists_three_requests_and_cancel_removes_them(stack: Stack):
    """Three in flight: running + two queued in order; cancelling the queued then the running one works."""
    t = tag()
    ids = [f"e2e-{t}-{n}" for n in (1, 2, 3)]

    def mine(rows: list[dict[str, Any]]) -> list[str]:
        return [r["client_request_id"] for r in rows]

    async with aiohttp.ClientSession() as session:
        first = asyncio.create_task(post(session, stack, ids[0], f"{ids[0]} {SLOW}"))
        await wait_queue(session, stack, lambda rows: mine(rows) == ids[:1])
        second = asyncio.create_task(post(session, stack, ids[1], f"{ids[1]} second"))
        await wait_queue(session, stack, lambda rows: mine(rows) == ids[:2])
        third = asyncio.create_task(post(session, stack, ids[2], f"{ids[2]} third", stream=True))
        rows = await wait_queue(session, stack, lambda rows: mine(rows) == ids)
        await wait_sim_streaming(stack, ids[0])
        server_ids = [r["id"] for r in rows]
        assert len(set(server_ids)) == 3 and not set(server_ids) & set(ids)
        assert [r["position"] for r in rows] == [0, 1, 2]
        assert [r["state"] for r in rows] == ["running", "queued", "queued"]
        assert [r["stream"] for r in rows] == [False, False, True]
        assert all(r["model"] == PLAIN_MODEL for r in rows)

        async with session.post(f"{stack.base_url}/v1/cancel/{server_ids[1]}") as resp:
            assert resp.status == 200
            assert await resp.json() == {
                "id": server_ids[1],
                "object": "request.cancelled",
                "cancelled": True,
                "state": "queued",
            }
        status, text = await second
        assert status == 499 and '"code":"request_cancelled"' in text
        rows = await queue_rows(session, stack)
        assert [(r["id"], r["position"]) for r in rows] == [(server_ids[0], 0), (server_ids[2], 1)]

        async with session.post(f"{stack.base_url}/v1/cancel/{server_ids[0]}") as resp:
            assert resp.status == 200 and (await resp.json())["state"] == "running"
        status, text = await first
        assert status == 499 and '"code":"request_cancelled"' in text
        status, text = await third
        assert status == 200 and text.rstrip().endswith("data: [DONE]") and '"error"' not in text

        async with session.post(f"{stack.base_url}/v1/cancel/{server_ids[0]}") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "request_not_found"
        assert await queue_rows(session, stack) == []

    assert await asyncio.to_thread(sim_record, stack, ids[1]) is None  # never reached the page
    cancelled = await wait_sim_ended(stack, ids[0])
    assert cancelled["ended"] == "client_closed"
    assert (await asyncio.to_thread(sim_record, stack, ids[2]))["ended"] == "complete"


async def wait_sim_streaming(stack: Stack, marker: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (record := await asyncio.to_thread(sim_record, stack, marker)) is None or record.get(
        "first_byte_at"
    ) is None:
        assert time.monotonic() < deadline, f"{marker} never reached the simulator"
        await asyncio.sleep(0.05)  # polling an outside condition with a deadline


async def read_some_then_leave(stack: Stack, marker: str, stream: bool) -> float:
    """Start a slow request, wait until the answer is under way, drop the connection; return when."""
    async with aiohttp.ClientSession() as session:
        if stream:
            resp = await session.post(
                stack.base_url + "/v1/chat/completions", json=body(f"{marker} {SLOW}", True)
            )
            seen = 0
            async for line in resp.content:
                if line.startswith(b"data: ") and b'"content":"' in line and b'"content":""' not in line:
                    seen += 1
                    if seen == 3:
                        break
            resp.close()
            return time.time()
        pending = asyncio.create_task(post(session, stack, f"ns-{marker}", f"{marker} {SLOW}"))
        await wait_sim_streaming(stack, marker)
        assert not pending.done(), "the slow answer was complete before the client could leave"
        pending.cancel()  # aiohttp closes the connection
        left_at = time.time()
        try:
            await pending
        except asyncio.CancelledError:
            pass
        return left_at


async def test_client_leaving_mid_stream_stops_the_simulators_stream_within_a_second(stack: Stack):
    """Closing an SSE connection mid-answer ends the upstream stream within 1 s; the next request works."""
    marker = f"leave-{tag()}"
    left_at = await read_some_then_leave(stack, marker, stream=True)
    record = await wait_sim_ended(stack, marker)
    assert record["ended"] == "client_closed", record
    assert record["last_byte_at"] - left_at < 1.0
    assert record["ended_at"] - left_at < 1.0
    async with aiohttp.ClientSession() as session:
        status, text = await post(session, stack, f"after-{tag()}", "after leaving")
        assert status == 200 and "You said: after leaving" in text
        assert await queue_rows(session, stack) == []


async def test_client_leaving_a_non_stream_request_stops_the_simulators_stream(stack: Stack):
    """Dropping a non-streaming request while it is answered ends the upstream stream within 1 s."""
    marker = f"leave-ns-{tag()}"
    left_at = await read_some_then_leave(stack, marker, stream=False)
    record = await wait_sim_ended(stack, marker)
    assert record["ended"] == "client_closed", record
    assert record["ended_at"] - left_at < 1.0
    async with aiohttp.ClientSession() as session:
        status, _ = await post(session, stack, f"after-{tag()}", "after leaving")
        assert status == 200


async def test_cancelling_a_running_stream_ends_it_with_an_error_event_and_stops_upstream(stack: Stack):
    """/v1/cancel on a streaming request mid-answer: request_cancelled event, [DONE], upstream ends within 1 s."""
    req_id = f"cancel-stream-{tag()}"
    async with aiohttp.ClientSession() as session:
        resp = await session.post(
            stack.base_url + "/v1/chat/completions",
            json=body(f"{req_id} {SLOW}", True),
            headers={"x-request-id": req_id},
        )
        assert resp.status == 200
        server_id = resp.headers["x-request-id"]
        lines: list[bytes] = []
        cancelled_at = None
        async for line in resp.content:
            if line.strip():
                lines.append(line.strip())
            if (
                cancelled_at is None
                and sum(b'"content":"' in x and b'"content":""' not in x for x in lines) == 2
            ):
                async with session.post(f"{stack.base_url}/v1/cancel/{server_id}") as cancel:
                    assert cancel.status == 200 and (await cancel.json())["state"] == "running"
                cancelled_at = time.time()
        resp.close()
    assert cancelled_at is not None, lines
    assert lines[-1] == b"data: [DONE]"
    assert b'"code":"request_cancelled"' in lines[-2]
    record = await wait_sim_ended(stack, req_id)
    assert record["ended"] == "client_closed"
    assert record["ended_at"] - cancelled_at < 1.0


async def test_two_requests_with_one_client_request_id_each_get_their_own_answer(stack: Stack):
    """Two requests sent at once with the same x-request-id: each client gets its own answer (distinct nonces),
    under its own server id, and the client's id comes back in x-client-request-id."""
    nonces = [f"nonce-{tag()}", f"nonce-{tag()}"]
    async with aiohttp.ClientSession() as session:

        async def ask(nonce: str) -> tuple[int, str, str]:
            async with session.post(
                stack.base_url + "/v1/chat/completions", json=body(nonce), headers={"x-request-id": "same-id"}
            ) as resp:
                assert resp.headers["x-client-request-id"] == "same-id"
                return resp.status, resp.headers["x-request-id"], await resp.text()

        answers = await asyncio.gather(*(ask(n) for n in nonces))
    assert [a[0] for a in answers] == [200, 200] and answers[0][1] != answers[1][1]
    for (_, _, text), mine, other in zip(answers, nonces, nonces[::-1], strict=True):
        assert f"You said: {mine}" in text and other not in text
