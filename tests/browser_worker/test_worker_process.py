"""``python -m browser_worker`` as a process: socket from the start, login states, crash relaunch, SIGTERM.

The tests that need a login share one worker subprocess (``signed_in`` installs the login, and starts
the worker again after the test that stops it); the two that need a worker without a login get one of
their own (``signed_out``). So any one of them can run alone or in any order.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from browser_worker.auth import interactive_login
from shared import channel, protocol
from tests.browser_worker.conftest import REPO_ROOT, WorkerClient, resolve_value, worker_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")


class WorkerProcess:
    """The worker subprocess plus a status stream that sees every pushed ``WorkerStatus``."""

    def __init__(self, work_dir: Path, env: dict[str, str]) -> None:
        self.work_dir = work_dir
        self.socket = work_dir / "run" / "worker.sock"
        self.active = work_dir / "auth" / "active"
        self.log = work_dir / "worker.out"
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "browser_worker"], cwd=REPO_ROOT, env=env, stdout=out, stderr=out
            )

    async def wait_for_state(self, *states: str, timeout: float = 60) -> protocol.WorkerStatus:
        """Wait for a pushed (or current) status in one of ``states``."""
        async with asyncio.timeout(timeout):
            conn = await self.connect()
            try:
                await conn.send(protocol.StatusRequest())
                async for msg in conn:
                    if isinstance(msg, protocol.WorkerStatus) and msg.state in states:
                        return msg
            finally:
                await conn.close()
        raise AssertionError("status stream closed")

    async def connect(self) -> channel.Connection:
        async with asyncio.timeout(20):
            while True:
                try:
                    return await channel.connect(self.socket)
                except OSError:
                    if self.process.poll() is not None:
                        raise AssertionError(f"worker exited: {self.log.read_text()[-3000:]}") from None
                    await asyncio.sleep(0.05)  # the subprocess is still binding its socket

    def browser_pid(self) -> int:
        """The main Chromium process among the worker's descendants."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        todo, found = [self.process.pid], []
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                todo.append(child)
                try:
                    cmd = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if cmd and b"chrom" in cmd[0] and not any(arg.startswith(b"--type=") for arg in cmd):
                    found.append(child)
        assert found, "no browser process found"
        return found[0]


def start_worker_proc(simulator, work_dir: Path) -> WorkerProcess:
    """A worker subprocess whose run, log, login and snapshot folders are under ``work_dir``."""
    active = work_dir / "auth" / "active"
    active.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        RUN_DIR=str(work_dir / "run"),
        LOG_DIR=str(work_dir / "logs"),
        CERTS_DIR=str(work_dir / "certs"),
        STREAM_PORT="0",
        AISTUDIO_RESOLVE=resolve_value(simulator),
        AUTH_PROFILES_DIR=str(work_dir / "auth"),
        ERROR_SNAPSHOT_DIR=str(work_dir / "errors"),
        EXCLUDED_MODELS_FILE=str(work_dir / "excluded.txt"),
        BROWSER="chromium",
        RESPONSE_COMPLETION_TIMEOUT_MS="60000",
        COOKIE_REFRESH_INTERVAL_S="0",
        SHUTDOWN_GRACE_S="2",
        PYTHONUNBUFFERED="1",
    )
    return WorkerProcess(work_dir, env)


def stop_worker_proc(proc: WorkerProcess) -> None:
    if proc.process.poll() is None:
        proc.process.kill()
        proc.process.wait()
    if os.environ.get("BW_SHOW_LOG"):
        print(proc.log.read_text()[-15000:])


class SharedWorker:
    """The module's shared worker, started again when a test has stopped it (SIGTERM test)."""

    def __init__(self, simulator, work_dir: Path) -> None:
        self.simulator, self.work_dir, self.starts = simulator, work_dir, 0
        self.proc: WorkerProcess | None = None

    def current(self) -> WorkerProcess:
        if self.proc is None or self.proc.process.poll() is not None:
            if self.proc is not None:
                stop_worker_proc(self.proc)
            self.starts += 1
            self.proc = start_worker_proc(self.simulator, self.work_dir / f"shared-{self.starts}")
        return self.proc


@pytest.fixture(scope="module")
def shared_worker(simulator, work_dir) -> Iterator[SharedWorker]:
    shared = SharedWorker(simulator, work_dir)
    try:
        yield shared
    finally:
        if shared.proc is not None:
            stop_worker_proc(shared.proc)


@pytest.fixture
def signed_out(simulator, work_dir) -> Iterator[WorkerProcess]:
    """A worker of the test's own, started with an empty login folder."""
    proc = start_worker_proc(simulator, Path(tempfile.mkdtemp(prefix="out-", dir=work_dir)))
    try:
        yield proc
    finally:
        stop_worker_proc(proc)


def install_profile(sim, worker_proc: WorkerProcess) -> None:
    """Write a fresh signed-in storage state as the active profile."""
    target = worker_proc.active / "demo.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(sim.storage_state()))
    os.replace(tmp, target)


@pytest_asyncio.fixture(loop_scope="module")
async def signed_in(shared_worker, simulator) -> WorkerProcess:
    """The shared worker (running) with a saved login, ready (a login already saved is left alone: a new
    one reloads it)."""
    worker_proc = shared_worker.current()
    if not (worker_proc.active / "demo.json").exists():
        install_profile(simulator, worker_proc)
    await worker_proc.wait_for_state("ready", "degraded")
    return worker_proc


async def test_socket_is_served_before_login_and_says_how_to_log_in(signed_out):
    """With no saved login the worker answers ping and reports login_required with the fix."""
    worker_proc = signed_out
    conn = await worker_proc.connect()
    await conn.close()
    pong = await channel.ping(worker_proc.socket)
    assert pong.process == "browser_worker"
    status = await worker_proc.wait_for_state("login_required")
    assert "make login" in status.message
    result = await WorkerClient(worker_proc.socket).run("hi")
    assert result.error is not None and result.error.kind == "login_required"


async def test_a_new_profile_makes_the_worker_ready(signed_out, simulator):
    """Saving a login is noticed without a restart; the worker becomes ready and runs a job."""
    worker_proc = signed_out
    await worker_proc.wait_for_state("login_required")
    install_profile(simulator, worker_proc)
    status = await worker_proc.wait_for_state("ready", "degraded")
    assert status.model and status.models
    assert status.self_test and all(status.self_test.values()), status.self_test
    result = await WorkerClient(worker_proc.socket).run("hello #sim:words=4")
    assert result.error is None, result.error
    assert result.content == simulator.inspect("requests/last")["response"]["answer_text"]


async def test_killed_browser_is_relaunched_and_the_next_job_works(signed_in, simulator):
    worker_proc = signed_in
    """SIGKILL on Chromium: the worker notices, relaunches, and serves the next job."""
    os.kill(worker_proc.browser_pid(), signal.SIGKILL)
    await worker_proc.wait_for_state("starting")
    status = await worker_proc.wait_for_state("ready", "degraded")
    assert status.counts.get("relaunches", 0) >= 1
    result = await WorkerClient(worker_proc.socket).run("again #sim:words=4")
    assert result.error is None, result.error


async def test_expired_session_mid_run_reports_login_required_then_recovers(signed_in, simulator):
    """#sim:error=login: the job fails with login_required; a new login brings the worker back."""
    worker_proc = signed_in
    result = await WorkerClient(worker_proc.socket).run("expire #sim:error=login")
    assert result.error is not None and result.error.kind == "login_required", result.error
    status = await worker_proc.wait_for_state("login_required")
    assert "make login" in status.message
    install_profile(simulator, worker_proc)
    await worker_proc.wait_for_state("ready", "degraded")
    follow = await WorkerClient(worker_proc.socket).run("back #sim:words=3")
    assert follow.error is None, follow.error


async def test_sigterm_exits_cleanly_and_removes_the_socket(signed_in):
    """SIGTERM: exit status 0, socket gone, cookies written back to the profile."""
    worker_proc = signed_in
    before = (worker_proc.active / "demo.json").stat().st_mtime_ns
    worker_proc.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(worker_proc.process.wait, 30)
    assert code == 0, worker_proc.log.read_text()[-3000:]
    assert not worker_proc.socket.exists()
    saved = worker_proc.active / "demo.json"
    assert saved.stat().st_mtime_ns >= before
    assert json.loads(saved.read_text())["cookies"]


async def test_login_command_saves_a_private_profile(simulator, work_dir):
    """The login flow waits for the sign-in, proves it with ListModels and saves the state 0600."""
    settings = worker_settings(simulator, work_dir / "login", None, auth_profiles_dir=work_dir / "login-auth")

    async def sign_in(page):
        await page.locator("input[name=email]").fill("demo@example.com")
        await page.locator("input[name=password]").fill("demo")
        await page.locator("input[name=password]").press("Enter")

    path = await interactive_login(settings, "tester", headless=True, timeout_s=60, on_page=sign_in)
    assert path == work_dir / "login-auth" / "active" / "tester.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    names = {c["name"] for c in json.loads(path.read_text())["cookies"]}
    assert {"SID", "SAPISID"} <= names
    shutil.rmtree(work_dir / "login-auth")


async def test_unreachable_ai_studio_keeps_serving_and_retries(work_dir):
    """Connection refused at start: state starting with the reason, the socket still answers."""
    from shared.settings import Settings
    from tests.browser_worker.conftest import start_worker
    from tests.conftest import pick_free_port

    dead = pick_free_port()
    profile = work_dir / "unused-profile.json"
    profile.write_text('{"cookies": [], "origins": []}')
    settings = Settings(
        _env_file=None,
        stream_port=0,
        aistudio_resolve=",".join(
            f"{h}=127.0.0.1:{dead}" for h in ("aistudio.google.com", "accounts.google.com")
        ),
        run_dir=work_dir / "dead-run",
        log_dir=work_dir / "logs",
        auth_profile=profile,
        error_snapshot_dir=work_dir / "errors",
        excluded_models_file=work_dir / "excluded.txt",
        browser="chromium",
        cookie_refresh_interval_s=0,
    )
    async with start_worker(settings, ready=False) as worker:
        client = WorkerClient(settings.worker_socket)
        async with asyncio.timeout(30):
            status = await client.status()
            conn = await channel.connect(settings.worker_socket)
            try:
                await conn.send(protocol.StatusRequest())
                async for msg in conn:
                    if isinstance(msg, protocol.WorkerStatus) and "unreachable" in msg.message:
                        status = msg
                        break
            finally:
                await conn.close()
        assert status.state == "starting"
        assert "retrying" in status.message
        assert not worker.supervisor.ready.is_set()
