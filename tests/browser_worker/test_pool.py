"""The worker's pool of pages (``PAGES_PER_ACCOUNT``) in process: a broken page is replaced alone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from pathlib import Path

import pytest

from browser_worker.supervisor import Supervisor
from shared.errors import QuotaExceeded
from shared.settings import Settings
from tests.browser_worker.conftest import WorkerClient, start_worker, worker_settings
from tests.simulator.conftest import SimProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_page_that_closes_is_replaced_while_the_other_page_finishes_its_answer(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    """Pages start lazily: one at start, the second when a job finds the first busy; then, while the first page
    holds an answer, the second breaks and is replaced without touching the first."""
    settings = worker_settings(simulator, work_dir / "pool", demo_profile, pages_per_account=2)
    async with start_worker(settings) as worker:
        sup = worker.supervisor
        busy, other = sup.slots
        assert (busy.id, other.id) == ("s1", "s2") and worker.status().capacity == 2
        assert busy.ready.is_set() and other.state == "standby" and other.page is None
        client = WorkerClient(settings.worker_socket)
        held = asyncio.create_task(client.run("#sim:hold=pool-a #sim:chunks=4 #sim:words=12 hello"))
        async with asyncio.timeout(30):
            while not busy.job:
                await asyncio.sleep(0.05)  # the job is handed to a page by another task
        second = await client.run("#sim:words=2 needs another page")  # the second page starts for it
        assert second.error is None and other.ready.is_set() and busy.job is not None
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
    account's quota is used up, so exactly one of two jobs at once meets it, and runs again on the first
    account); removing a login file closes its account's page once its job is done, and the pool goes on
    with the other."""
    base = work_dir / "accounts"
    active = base / "auth" / "active"
    active.mkdir(parents=True, mode=0o700)
    shutil.copy(demo_profile, active / "demo.json")
    other = active / "other.json"
    other.write_text(json.dumps(simulator.storage_state("other@example.com")))
    settings = worker_settings(simulator, base, None)
    simulator.reset()
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
            assert all(r.error is None for r in results[:2]), [r.events for r in results[:2]]
            assert [r["status"] for r in simulator.inspect("requests")].count(429) == 1
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


def _two_accounts(simulator: SimProcess, demo_profile: Path, base: Path) -> Settings:
    active = base / "auth" / "active"
    active.mkdir(parents=True, mode=0o700)
    shutil.copy(demo_profile, active / "demo.json")
    (active / "other.json").write_text(json.dumps(simulator.storage_state("other@example.com")))
    return worker_settings(simulator, base, None)


async def test_a_job_that_meets_a_used_up_quota_runs_again_on_another_account_which_then_serves_alone(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    """Failover before the first token: the client never sees the quota error of one account; that account
    cools down (shown in the status) and gets no more requests while the other serves."""
    settings = _two_accounts(simulator, demo_profile, work_dir / "failover")
    simulator.reset()
    simulator.config(quota_exhausted_accounts=["other@example.com"])
    try:
        async with start_worker(settings) as worker:
            sup = worker.supervisor
            async with asyncio.timeout(60):
                await asyncio.gather(*(s.ready.wait() for s in sup.slots))
            client = WorkerClient(settings.worker_socket)
            results = await asyncio.gather(*(client.run(f"#sim:words=4 job {i}") for i in range(2)))
            results += [await client.run(f"#sim:words=4 later {i}") for i in range(3)]
            assert all(r.error is None and len(r.content.split()) == 4 for r in results)
            assert [r["status"] for r in simulator.inspect("requests")].count(429) == 1
            cooling = {s.account: s for s in worker.status().slots}["other"]
            assert cooling.state == "cooling" and cooling.cooling_until is not None
            assert 3500 < cooling.cooling_until - time.time() <= 3600  # a used-up quota: an hour
            assert worker.counts["failed_over"] == 1
    finally:
        simulator.config(quota_exhausted_accounts=[])


async def test_when_every_account_is_cooling_the_job_gets_429_with_the_earliest_recovery(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    settings = _two_accounts(simulator, demo_profile, work_dir / "allcool")
    simulator.reset()
    simulator.config(quota_exhausted_accounts=["other@example.com", "demo@example.com"])
    try:
        async with start_worker(settings) as worker:
            async with asyncio.timeout(60):
                await asyncio.gather(*(s.ready.wait() for s in worker.supervisor.slots))
            client = WorkerClient(settings.worker_socket)
            first = await client.run("#sim:words=2 one")  # one account, then the other: both used up
            assert first.error is not None and (first.error.kind, first.error.status) == ("quota", 429)
            asked = len(simulator.inspect("requests"))
            assert asked == 2
            second = await client.run("#sim:words=2 two")  # refused at once: nothing reaches AI Studio
            assert second.error is not None and (second.error.kind, second.error.status) == (
                "accounts_cooling",
                429,
            )
            assert second.error.retry_after is not None and 3500 < second.error.retry_after <= 3600
            assert "cooling down" in second.error.message and len(simulator.inspect("requests")) == asked
    finally:
        simulator.config(quota_exhausted_accounts=[])


async def test_after_its_cooldown_an_account_ramps_up_one_page_first_then_all_of_them(tmp_path: Path):
    active = tmp_path / "auth" / "active"
    active.mkdir(parents=True)
    for name in ("demo", "other"):
        (active / f"{name}.json").write_text("{}")
    settings = Settings(auth_profiles_dir=tmp_path / "auth", run_dir=tmp_path / "run", pages_per_account=2)
    sup = Supervisor(settings, feed=None, on_change=lambda: None)
    assert [(s.id, s.account) for s in sup.slots] == [
        ("s1", "demo"),
        ("s2", "demo"),
        ("s3", "other"),
        ("s4", "other"),
    ]
    for slot in sup.slots:
        slot.ready.set()
    sup.cool(sup.slots[2], QuotaExceeded("used up", retry_after=30))
    assert sup._free_slot(None, {"demo"}) is None and sup.cooling_until("other") is not None
    sup.cooldowns.until["other"] = time.time() - 1  # the cooldown is over
    first = sup._free_slot(None, {"demo"})
    assert first is not None and first.account == "other"
    await first.page_lock.acquire()  # its one job runs
    assert sup._free_slot(None, {"demo"}) is None, "a ramping account serves with one page only"
    sup.succeeded(first)
    second = sup._free_slot(None, {"demo"})
    assert second is not None and second.account == "other" and second is not first
    first.page_lock.release()


async def test_with_one_account_errors_reach_each_request_as_before(tmp_path: Path):
    """The defaults (one account): a quota error cools nothing, so the next request asks AI Studio again."""
    active = tmp_path / "auth" / "active"
    active.mkdir(parents=True)
    (active / "me.json").write_text("{}")
    sup = Supervisor(
        Settings(auth_profiles_dir=tmp_path / "auth", run_dir=tmp_path / "run"),
        feed=None,
        on_change=lambda: None,
    )
    sup.slots[0].ready.set()
    sup.cool(sup.slots[0], QuotaExceeded("used up"))
    assert sup.cooldowns.until == {} and sup._free_slot(None, set()) is sup.slots[0]


async def test_a_disabled_account_finishes_its_running_request_takes_no_new_one_and_comes_back_when_enabled(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    settings = _two_accounts(simulator, demo_profile, work_dir / "disable")
    simulator.reset()
    async with start_worker(settings) as worker:
        sup = worker.supervisor
        async with asyncio.timeout(60):
            await asyncio.gather(*(s.ready.wait() for s in sup.slots))
        client = WorkerClient(settings.worker_socket)
        running = asyncio.create_task(client.run("#sim:hold=drain #sim:words=5 running"))
        async with asyncio.timeout(30):
            while not any(s.job for s in sup.slots):
                await asyncio.sleep(0.05)  # handed to a page by another task
        account = next(s.account for s in sup.slots if s.job)
        assert account is not None and sup.set_enabled(account, False)
        assert not sup.set_enabled("nobody", False)
        await asyncio.sleep(0)  # let the supervisor see it
        assert {a.name: a.state for a in sup.accounts()}[account] == "draining"
        others = await asyncio.gather(*(client.run(f"#sim:words=2 meanwhile {i}") for i in range(2)))
        assert all(r.error is None for r in others)
        assert {s.account for s in sup.slots if not s.draining} == {"demo", "other"} - {account}
        simulator.inspect("release", {"hold": "drain"})
        assert (await running).error is None and len((await running).content.split()) == 5
        async with asyncio.timeout(30):
            while {a.name: a.state for a in sup.accounts()}[account] != "disabled":
                await asyncio.sleep(0.05)  # its page closes once its job is done
        assert [s.account for s in sup.slots].count(account) == 0
        sup.set_enabled(account, True)
        async with asyncio.timeout(60):
            while {a.name: a.state for a in sup.accounts()}[account] != "ready":
                await asyncio.sleep(0.05)  # a new page starts for it
        assert worker.status().capacity == 2


async def test_an_account_whose_login_expired_takes_only_its_own_pages_out(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    base = work_dir / "expired"
    settings = _two_accounts(simulator, demo_profile, base)
    other = base / "auth" / "active" / "other.json"
    state = json.loads(other.read_text())
    for cookie in state["cookies"]:
        cookie["value"] = "expired-" + cookie["value"][:8]  # a session AI Studio no longer knows
    other.write_text(json.dumps(state))
    async with start_worker(settings, ready=False) as worker:
        sup = worker.supervisor
        async with asyncio.timeout(60):
            while {a.name: a.state for a in sup.accounts()} != {"demo": "ready", "other": "login_required"}:
                await asyncio.sleep(0.05)  # both pages start on their own
        assert worker.status().state == "ready"
        client = WorkerClient(settings.worker_socket)
        results = await asyncio.gather(*(client.run(f"#sim:words=2 still {i}") for i in range(3)))
        assert all(r.error is None for r in results)


async def test_a_page_that_crashes_before_the_first_token_hands_the_job_to_another_account(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    """Failover on a crashed page: the job runs again on the other account and the client gets one whole
    answer; the crashed page is replaced."""
    settings = _two_accounts(simulator, demo_profile, work_dir / "crash")
    async with start_worker(settings) as worker:
        sup = worker.supervisor
        async with asyncio.timeout(60):
            await asyncio.gather(*(s.ready.wait() for s in sup.slots))
        client = WorkerClient(settings.worker_socket)
        job = asyncio.create_task(client.run("#sim:ttfb_ms=4000 #sim:words=6 slow to start"))
        async with asyncio.timeout(30):
            while not any(s.job for s in sup.slots):
                await asyncio.sleep(0.05)  # handed to a page by another task
        first = next(s for s in sup.slots if s.job)
        assert first.page is not None
        cdp = await first.page.context.new_cdp_session(first.page.page)
        with contextlib.suppress(Exception):  # the page dies under the call
            await cdp.send("Page.crash")
        result = await job
        assert result.error is None and len(result.content.split()) == 6, result.events
        assert worker.counts["failed_over"] == 1
        async with asyncio.timeout(60):
            while first.replacements < 1 or not first.ready.is_set():
                await asyncio.sleep(0.05)  # replaced by its own task


async def test_a_rate_limited_account_hands_its_job_to_another_and_cools_down_for_a_minute(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    """The per-minute form: the job fails over and the account cools down for the rate limit's minute (the
    error names no time); a bad simulator setting is refused."""
    settings = _two_accounts(simulator, demo_profile, work_dir / "ratelimit")
    simulator.reset()
    with pytest.raises(Exception, match="rate_limited_accounts"):
        simulator.config(rate_limited_accounts={"other@example.com": -1})
    simulator.config(rate_limited_accounts={"other@example.com": 30})
    try:
        async with start_worker(settings) as worker:
            sup = worker.supervisor
            async with asyncio.timeout(60):
                await asyncio.gather(*(s.ready.wait() for s in sup.slots))
            client = WorkerClient(settings.worker_socket)
            results = await asyncio.gather(*(client.run(f"#sim:words=3 rl {i}") for i in range(2)))
            assert all(r.error is None for r in results)
            limited = [r for r in simulator.inspect("requests") if r["status"] == 429]
            assert [r["account"] for r in limited] == ["other@example.com"]
            until = sup.cooling_until("other")
            assert until is not None and 50 < until - time.time() <= 60
    finally:
        simulator.config(rate_limited_accounts={})
