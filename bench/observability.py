"""What recording costs a request (issue 19): the usage ledger, the metrics and the timelines.

The API server runs alone against ``InstantWorker`` below (the real socket protocol, an answer at once),
so the request's own cost is all there is to measure.
Rounds alternate between recording on (the app's observers as built) and off (the observer list
emptied); each round sends the same whole chat completions one after another. Row: the median
per-request time with recording minus without, per pair of rounds (goal: at most 1 ms).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from api_server.app import create_app
from api_server.app_keys import LEDGER, OBSERVERS, WORKER
from bench.common import BenchResult
from shared import channel, protocol
from shared.settings import Settings

#: Goal: what recording adds to one request (ms).
GOAL_MS = 1.0
BODY = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}


MODEL = protocol.ModelInfo(id="gemini-2.5-pro", display_name="Gemini 2.5 Pro")


class InstantWorker:
    """A browser worker stand-in on the worker socket: ready, one model, every job answered at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._server: channel.SocketServer | None = None

    def _status(self) -> protocol.WorkerStatus:
        return protocol.WorkerStatus(state="ready", model=MODEL.id, models=[MODEL], capture="stream")

    async def _handle(self, conn: channel.Connection) -> None:
        await conn.send(self._status())
        async for msg in conn:
            if isinstance(msg, protocol.StatusRequest):
                await conn.send(self._status())
            elif isinstance(msg, protocol.JobSubmit):
                rid, now = msg.id, time.time()
                await conn.send(protocol.JobAccepted(id=rid, ts=now, slot="s1"))
                await conn.send(protocol.Content(id=rid, ts=now, text="an answer"))
                await conn.send(protocol.Usage(id=rid, ts=now, prompt_tokens=10, completion_tokens=5))
                await conn.send(protocol.Finish(id=rid, ts=now, reason="stop", capture="stream"))
                await conn.send(protocol.Done(id=rid, ts=now))

    async def __aenter__(self) -> InstantWorker:
        self._server = await channel.serve(self.path, self._handle, process="bench_worker", version="bench")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()


def _settings(base: Path) -> Settings:
    return Settings(
        run_dir=base / "run",
        log_dir=base / "logs",
        api_keys_file=base / "data" / "api_keys.json",
        data_dir=base / "data",
        stream_port=0,
        admin_key=None,
        attachments_dir=None,
    )


async def _round(session: aiohttp.ClientSession, url: str, n: int) -> float:
    """Median ms of ``n`` sequential requests."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with session.post(url, json=BODY) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def _run(quick: bool) -> BenchResult:
    result = BenchResult("observability")
    rounds, per_round = (4, 50) if quick else (12, 200)
    base = Path(tempfile.mkdtemp(prefix="aisp-bench-", dir="/tmp"))
    try:
        settings = _settings(base)
        async with InstantWorker(settings.worker_socket):
            app = create_app(settings)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            observers = list(app[OBSERVERS])
            await app[WORKER].wait_usable()
            on: list[float] = []
            off: list[float] = []
            async with aiohttp.ClientSession() as session:
                await _round(session, url, 20)  # warm up
                for i in range(rounds):
                    for recording in (i % 2 == 0, i % 2 == 1):
                        app[OBSERVERS][:] = observers if recording else []
                        (on if recording else off).append(await _round(session, url, per_round))
            await asyncio.to_thread(app[LEDGER].flush)
            written = app[LEDGER].written
            await runner.cleanup()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    diffs = [a - b for a, b in zip(on, off, strict=True)]
    result.add(f"request, recording on (n={len(on)} rounds of {per_round})", "ms", on)
    result.add(f"request, recording off (n={len(off)} rounds of {per_round})", "ms", off)
    result.add("added by ledger + metrics + timeline", "ms", diffs, target=GOAL_MS)
    result.raw = {"on_ms": on, "off_ms": off, "ledger_rows_written": written}
    return result


def run(quick: bool = False) -> BenchResult:
    return asyncio.run(_run(quick))
