"""Fixtures for the browser worker: the simulator, a real stream proxy, a demo login, a worker.

Everything is real: Chromium, the simulator subprocess, ``python -m stream_proxy``
and the worker's Unix socket. Expensive fixtures are module-scoped; tests that
need a fresh worker start their own (``start_worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from browser_worker.worker import Worker
from shared import channel, protocol
from shared.settings import Settings
from tests.conftest import pick_free_port
from tests.requirements import skip_unless
from tests.simulator.conftest import SIM_HOSTS, SimProcess, start_simulator

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


def resolve_value(sim: SimProcess) -> str:
    return ",".join(f"{host}=127.0.0.1:{sim.port}" for host in SIM_HOSTS)


@pytest.fixture(scope="module")
def work_dir() -> Iterator[Path]:
    """A private, short directory per module (Unix socket paths must stay short)."""
    path = Path(tempfile.mkdtemp(prefix="bw-", dir="/tmp"))
    path.chmod(0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def simulator(work_dir: Path) -> Iterator[SimProcess]:
    """The simulator subprocess, shared by a module (the simulator's own ``start_simulator``)."""
    skip_unless(CHROMIUM.exists(), "Chromium")
    with start_simulator(work_dir / "sim") as sim:
        yield sim


@pytest.fixture(scope="module")
def demo_profile(simulator: SimProcess, work_dir: Path) -> Path:
    """A signed-in storage state for the demo account, as the worker's active profile."""
    active = work_dir / "auth" / "active"
    active.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = active / "demo.json"
    shutil.copy(simulator.profile_path, target)
    target.chmod(0o600)
    return target


@dataclass
class ProxyProcess:
    """A ``python -m stream_proxy`` subprocess mapping the AI Studio hosts to the simulator."""

    env: dict[str, str]
    port: int
    run_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = field(default=0)

    @property
    def socket(self) -> Path:
        return self.run_dir / "proxy.sock"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream_proxy"], cwd=REPO_ROOT, env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stream_proxy exited: {self.log_path.read_text()[-2000:]}")
            try:
                asyncio.run(channel.ping(self.socket, timeout=1))
                return
            except (OSError, TimeoutError, ConnectionError):
                time.sleep(0.1)  # waiting for a subprocess to come up, not for the UI
        raise RuntimeError("stream_proxy did not come up")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def stream_proxy(simulator: SimProcess, work_dir: Path) -> Iterator[ProxyProcess]:
    """The real stream proxy on a free port (skipped when the package cannot run)."""
    try:
        import stream_proxy.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"stream_proxy is not available: {exc}")
    run_dir = work_dir / "run"
    port = pick_free_port()
    env = dict(
        os.environ,
        RUN_DIR=str(run_dir),
        LOG_DIR=str(work_dir / "logs"),
        CERTS_DIR=str(work_dir / "certs"),
        STREAM_PORT=str(port),
        AISTUDIO_RESOLVE=resolve_value(simulator),
        PYTHONUNBUFFERED="1",
    )
    proxy = ProxyProcess(env=env, port=port, run_dir=run_dir, log_path=work_dir / "stream_proxy.out")
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def worker_settings(
    simulator: SimProcess, work_dir: Path, profile: Path | None, *, stream_port: int = 0, **overrides: Any
) -> Settings:
    values: dict[str, Any] = dict(
        stream_port=stream_port,
        aistudio_resolve=resolve_value(simulator),
        run_dir=work_dir / "run",
        log_dir=work_dir / "logs",
        certs_dir=work_dir / "certs",
        auth_profiles_dir=work_dir / "auth",
        auth_profile=profile,
        error_snapshot_dir=work_dir / "errors",
        excluded_models_file=work_dir / "excluded_models.txt",
        browser="chromium",
        browser_executable=CHROMIUM,
        response_completion_timeout_ms=60_000,
        silence_timeout_ms=20_000,
        cookie_refresh_interval_s=0,
        shutdown_grace_s=2.0,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def start_worker(settings: Settings, *, ready: bool = True) -> AsyncIterator[Worker]:
    """An in-process ``Worker``; waits until it is ready (or degraded) unless ``ready=False``."""
    worker = Worker(settings)
    await worker.start()
    try:
        if ready:
            async with asyncio.timeout(60):
                await worker.supervisor.ready.wait()
        yield worker
    finally:
        await worker.close()


@dataclass
class JobResult:
    """Everything the worker sent for one job, in order."""

    events: list[protocol.Message]
    started: float
    ended: float

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    @property
    def content(self) -> str:
        return "".join(e.text for e in self.of(protocol.Content))

    @property
    def reasoning(self) -> str:
        return "".join(e.text for e in self.of(protocol.Reasoning))

    @property
    def error(self) -> protocol.Error | None:
        errors = self.of(protocol.Error)
        return errors[0] if errors else None

    @property
    def done(self) -> protocol.Done:
        return self.of(protocol.Done)[-1]

    @property
    def types(self) -> list[str]:
        """The job's messages in order, without statuses and the page's ``stage`` reports (``stages``)."""
        return [e.type for e in self.events if not isinstance(e, protocol.WorkerStatus | protocol.Stage)]

    @property
    def stages(self) -> list[str]:
        return [e.name for e in self.of(protocol.Stage)]


class WorkerClient:
    """A tiny API-side client: submits jobs over the real socket and collects events until Done."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def run(
        self,
        prompt: str | None = None,
        *,
        model: str = "gemini-2.5-pro",
        messages: list[dict[str, Any]] | None = None,
        cancel_when: Any = None,
        on_event: Any = None,
        timeout: float = 60,
        **job: Any,
    ) -> JobResult:
        """Submit one job; ``cancel_when(event) -> bool`` sends JobCancel when it returns True;
        ``on_event(event)`` (async) runs for every event before the next one is read."""
        job_id = f"req-{uuid.uuid4().hex[:8]}"
        msgs = messages if messages is not None else [{"role": "user", "content": prompt}]
        conn = await channel.connect(self.path)
        events: list[protocol.Message] = []
        started = time.time()
        try:
            async with asyncio.timeout(timeout):
                await conn.send(
                    protocol.JobSubmit(id=job_id, job=protocol.Job(model=model, messages=msgs, **job))
                )
                cancelled = False
                async for msg in conn:
                    if isinstance(msg, protocol.WorkerStatus):
                        continue
                    events.append(msg)
                    if on_event is not None:
                        await on_event(msg)
                    if cancel_when is not None and not cancelled and cancel_when(msg):
                        cancelled = True
                        await conn.send(protocol.JobCancel(id=job_id))
                    if isinstance(msg, protocol.Done):
                        break
        finally:
            await conn.close()
        return JobResult(events=events, started=started, ended=time.time())

    async def status(self) -> protocol.WorkerStatus:
        conn = await channel.connect(self.path)
        try:
            await conn.send(protocol.StatusRequest())
            while True:
                msg = await conn.recv()
                if isinstance(msg, protocol.WorkerStatus):
                    return msg
        finally:
            await conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stream_worker(
    simulator: SimProcess, stream_proxy: ProxyProcess, demo_profile: Path, work_dir: Path
) -> AsyncIterator[Worker]:
    """One worker per module, capturing through the real stream proxy."""
    settings = worker_settings(simulator, work_dir, demo_profile, stream_port=stream_proxy.port)
    async with start_worker(settings) as worker:
        async with asyncio.timeout(10):
            await worker.feed.client.connected.wait()  # type: ignore[union-attr]
        yield worker


@pytest.fixture
def client(request: pytest.FixtureRequest) -> WorkerClient:
    """A client for whichever worker fixture the test module uses."""
    for name in ("stream_worker", "dom_worker"):
        if name in request.fixturenames:
            worker = request.getfixturevalue(name)
            return WorkerClient(worker.settings.worker_socket)
    raise LookupError("the test needs stream_worker or dom_worker")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dom_worker(simulator: SimProcess, demo_profile: Path, work_dir: Path) -> AsyncIterator[Worker]:
    """One worker per module without the stream proxy (``STREAM_PORT=0``: DOM capture)."""
    settings = worker_settings(simulator, work_dir / "dom", demo_profile, stream_port=0)
    async with start_worker(settings) as worker:
        yield worker


@pytest.fixture
def sim(simulator: SimProcess) -> Iterator[SimProcess]:
    """The module's simulator, reset to its default config and empty logs for this test."""
    simulator.reset()
    yield simulator


@pytest_asyncio.fixture
async def bare_page() -> AsyncIterator[Any]:
    """A blank page in a Chromium of its own (no worker, no proxy, no simulator)."""
    skip_unless(CHROMIUM.exists(), "Chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield await browser.new_page()
        finally:
            await browser.close()
