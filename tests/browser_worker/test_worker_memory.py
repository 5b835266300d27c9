"""The worker keeps nothing of a finished job: not the job (its prompt), not Playwright's record of the
request that sent it. Facts about references, not memory figures (those are in the
``chromium_memory`` benchmark and docs/performance.md)."""

from __future__ import annotations

import gc
import uuid

import pytest
from playwright._impl._network import Request as PlaywrightRequest

from browser_worker.job_queue import PendingJob
from shared import channel, protocol

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODEL = "gemini-2.0-flash"


async def run_on(conn: channel.Connection, job_id: str, prompt: str) -> list[protocol.Message]:
    """One job on an open connection (the API server keeps one for all its jobs); its events."""
    job = protocol.Job(model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True)
    await conn.send(protocol.JobSubmit(id=job_id, job=job))
    events = []
    async for msg in conn:
        if getattr(msg, "id", None) == job_id:
            events.append(msg)
            if isinstance(msg, protocol.Done):
                return events
    raise AssertionError("the worker closed the connection")


async def test_finished_jobs_are_not_kept_while_the_connection_stays_open(stream_worker):
    """Neither the job nor its messages outlive it, though the connection that sent it is still open."""
    mark = f"retention-{uuid.uuid4().hex[:8]}"
    conn = await channel.connect(stream_worker.settings.worker_socket)
    try:
        ids = [f"req-{mark}-{i}" for i in range(2)]
        for job_id in ids:
            events = await run_on(conn, job_id, f"{mark} #sim:words=3")
            assert not any(isinstance(e, protocol.Error) for e in events), events
        await stream_worker.wait_idle()  # Done comes before the clean-up; wait for the job to end
        gc.collect()
        assert [o.id for o in gc.get_objects() if isinstance(o, PendingJob)] == []
        assert [o for o in gc.get_objects() if isinstance(o, protocol.Job) and mark in str(o.messages)] == []
    finally:
        await conn.close()


async def test_playwright_keeps_no_request_that_carried_a_prompt(stream_worker, client):
    """After start-up the page has no request or response listener, so Playwright does not keep the
    GenerateContent requests (their bodies hold the whole prompt); the journal still lists them."""
    mark = f"request-{uuid.uuid4().hex[:8]}"
    for i in range(2):
        result = await client.run(f"{mark} {i} #sim:words=3", model=MODEL)
        assert result.error is None, result.error
    await stream_worker.wait_idle()
    gc.collect()
    kept = [r for r in gc.get_objects() if isinstance(r, PlaywrightRequest) and mark in (r.post_data or "")]
    assert kept == []
    posts = [
        line
        for line in stream_worker.supervisor.journal.network
        if " -> POST " in line and "GenerateContent" in line
    ]
    assert len(posts) >= 2, list(stream_worker.supervisor.journal.network)
