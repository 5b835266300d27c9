"""The worker's pool of pages (``PAGES_PER_ACCOUNT``) in process: a broken page is replaced alone."""

from __future__ import annotations

import asyncio
import json
import shutil
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


async def test_every_login_file_is_an_account_with_its_own_pages_and_removing_it_drains_them(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    """Two login files, one page each: each page signs in with its own account's cookies (the other
    account's quota is used up, so exactly one of two jobs at once fails with it); removing a login file
    closes its account's page once its job is done, and the pool goes on with the other."""
    base = work_dir / "accounts"
    active = base / "auth" / "active"
    active.mkdir(parents=True, mode=0o700)
    shutil.copy(demo_profile, active / "demo.json")
    other = active / "other.json"
    other.write_text(json.dumps(simulator.storage_state("other@example.com")))
    settings = worker_settings(simulator, base, None)
    simulator.config(quota_exhausted_accounts=["other@example.com"])
    try:
        async with start_worker(settings) as worker:
            sup = worker.supervisor
            async with asyncio.timeout(60):
                await asyncio.gather(*(s.ready.wait() for s in sup.slots))
            assert {s.id: s.account for s in sup.slots} == {"s1": "demo", "s2": "other"}
            assert worker.status().capacity == 2
            client = WorkerClient(settings.worker_socket)
            results = await asyncio.gather(
                client.run("#sim:hold=acc-1 #sim:words=3 one"),
                client.run("#sim:hold=acc-2 #sim:words=3 two"),
                _release_when_held(simulator, {"acc-1", "acc-2"}),
            )
            kinds = sorted((r.error.kind if r.error else "ok") for r in results[:2])
            assert kinds == ["ok", "quota"], [r.events for r in results[:2]]
            other.unlink()
            async with asyncio.timeout(30):
                while len(sup.slots) != 1:
                    await asyncio.sleep(0.05)  # the supervisor looks at the login files twice a second
            status = worker.status()
            assert [(s.id, s.account) for s in status.slots] == [("s1", "demo")] and status.capacity == 1
            assert (await client.run("#sim:words=2 after")).error is None
    finally:
        simulator.config(quota_exhausted_accounts=[])


async def _release_when_held(simulator: SimProcess, names: set[str]) -> None:
    """Open the holds once both answers are held (both pages generating), or once one failed first."""
    async with asyncio.timeout(60):
        while True:
            records = simulator.inspect("requests")
            held = {r.get("held") for r in records}
            if names <= held or any(r.get("status") == 429 for r in records):
                break
            await asyncio.sleep(0.05)  # the simulator's record of the browser's requests
    for name in names:
        simulator.inspect("release", {"hold": name})
