"""The worker's pieces that need no browser: the job queue and the retry rule of a job."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from browser_worker.job.runner import Attempt
from browser_worker.job_queue import JobQueue, PendingJob
from shared import protocol


def pending(job_id: str, conn: Any = None) -> PendingJob:
    job = protocol.Job(model="gemini-2.5-flash", messages=[{"role": "user", "content": job_id}])
    return PendingJob(job_id, job, conn)


async def test_the_queue_hands_out_jobs_first_in_first_out_and_waits_when_empty() -> None:
    queue = JobQueue()
    got: list[str] = []

    async def consume() -> None:  # starts first, on the empty queue
        got.append((await queue.get()).id)

    async def produce() -> None:
        for job_id in ("a", "b", "c"):
            queue.put(pending(job_id))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(consume())
        tg.create_task(produce())
    assert got == ["a"]
    assert [p.id for p in queue] == ["b", "c"]
    assert len(queue) == 2
    assert (await queue.get()).id == "b"


async def test_the_queue_can_be_looked_through_and_emptied() -> None:
    queue = JobQueue()
    mine, other = object(), object()
    for job_id, conn in (("a", mine), ("b", other), ("c", mine)):
        queue.put(pending(job_id, conn))
    assert [p.id for p in queue if p.conn is mine] == ["a", "c"]
    assert [p.id for p in queue.take_all()] == ["a", "b", "c"]
    assert len(queue) == 0 and list(queue) == []


@pytest.mark.parametrize(
    ("emitted", "flow_seen", "feed_trouble", "retryable"),
    [
        (False, False, True, True),  # the request most likely never left the browser
        (True, False, True, False),  # the client has part of an answer: never twice
        (False, True, True, False),  # the request reached AI Studio
        (False, False, False, False),  # the proxy was there: the failure is real
    ],
)
def test_a_job_runs_again_only_when_its_request_cannot_have_left_the_browser(
    emitted: bool, flow_seen: bool, feed_trouble: bool, retryable: bool
) -> None:
    assert Attempt(emitted=emitted, flow_seen=flow_seen, feed_trouble=feed_trouble).retryable is retryable
