"""The worker's pool of pages (``PAGES_PER_ACCOUNT``) in process: a broken page is replaced alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.browser_worker.conftest import WorkerClient, start_worker, worker_settings
from tests.simulator.conftest import SimProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_page_that_closes_is_replaced_while_the_other_page_finishes_its_answer(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    settings = worker_settings(simulator, work_dir / "pool", demo_profile, pages_per_account=2)
    async with start_worker(settings) as worker:
        sup = worker.supervisor
        async with asyncio.timeout(60):
            await asyncio.gather(*(s.ready.wait() for s in sup.slots))
        assert [s.id for s in sup.slots] == ["s1", "s2"] and worker.status().capacity == 2
        client = WorkerClient(settings.worker_socket)
        held = asyncio.create_task(client.run("#sim:hold=pool-a #sim:chunks=4 #sim:words=12 hello"))
        async with asyncio.timeout(30):
            while not any(s.job for s in sup.slots):
                await asyncio.sleep(0.05)  # the job is handed to a page by another task
        busy = next(s for s in sup.slots if s.job)
        other = next(s for s in sup.slots if s is not busy)
        assert other.page is not None
        await other.page.page.close()  # the other page breaks mid-answer of the first
        async with asyncio.timeout(60):
            while other.replacements < 1 or not other.ready.is_set():
                await asyncio.sleep(0.05)  # replaced by its own task
        assert busy.replacements == 0 and busy.job is not None
        simulator.inspect("release", {"hold": "pool-a"})
        result = await held
        assert result.error is None and len(result.content.split()) == 12
        again = await asyncio.gather(*(client.run(f"#sim:words=3 job {i}") for i in range(2)))
        assert all(r.error is None and len(r.content.split()) == 3 for r in again)
        await worker.wait_idle()  # the pages are cleared for the next job after their answers
        status = worker.status()
        assert {s.id: s.state for s in status.slots} == {"s1": "ready", "s2": "ready"}
