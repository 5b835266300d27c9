"""What the stack benchmarks share: result rows, statistics, a timing chat client, log timestamps.

A benchmark returns one ``BenchResult``: a list of ``Metric`` rows (every raw sample kept, the table
shows median, min and max) plus free-form ``raw`` data that goes to ``bench/results.json``. Targets are
goals, never assertions: a ``Metric`` with a target only gets a verdict.

Clocks: the client, the simulator and the log lines all use the same machine's wall clock
(``time.time()``), so client-side times can be subtracted from the simulator's recorded ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import secrets
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

#: The model the latency benchmarks use: no thinking controls, so the first token is answer text.
PLAIN_MODEL = "gemini-2.0-flash"
#: A second model without thinking, to force a model switch.
OTHER_MODEL = "gemma-3-27b-it"


@dataclass
class Metric:
    """One table row: a named series of samples and, optionally, a goal for its median."""

    name: str
    unit: str
    samples: list[float]
    target: float | None = None
    #: ``"<="`` (lower is better) or ``">="`` (higher is better).
    op: str = "<="
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def verdict(self) -> str:
        median = self.median
        if self.target is None:
            return "info"
        if median is None:
            return "no data"
        met = median <= self.target if self.op == "<=" else median >= self.target
        return "met" if met else "MISSED"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            median=self.median,
            min=min(self.samples) if self.samples else None,
            max=max(self.samples) if self.samples else None,
            verdict=self.verdict,
        )
        return data


@dataclass
class BenchResult:
    """What one benchmark measured."""

    name: str
    metrics: list[Metric] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def add(self, *args: Any, **kwargs: Any) -> Metric:
        metric = Metric(*args, **kwargs)
        self.metrics.append(metric)
        return metric

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 2),
            "error": self.error,
            "notes": self.notes,
            "metrics": [m.to_json() for m in self.metrics],
            "raw": self.raw,
        }


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of a non-empty list."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def nonce() -> str:
    return secrets.token_hex(5)


# --------------------------------------------------------------------------- the chat client


@dataclass
class Exchange:
    """One chat completion as the client saw it (wall-clock times, seconds since the epoch)."""

    request_id: str
    status: int = 0
    sent_at: float = 0.0
    #: (arrival time, content text, reasoning text) of every SSE chunk with a non-empty delta.
    deltas: list[tuple[float, str, str]] = field(default_factory=list)
    done_at: float | None = None
    finish_reason: str | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        return "".join(content for _, content, _ in self.deltas)

    @property
    def first_token_at(self) -> float | None:
        """Arrival of the first chunk that carried answer (or reasoning) text."""
        return self.deltas[0][0] if self.deltas else None

    @property
    def content_times(self) -> list[float]:
        return [t for t, content, _ in self.deltas if content]


async def stream_chat(
    session: aiohttp.ClientSession,
    base_url: str,
    request_id: str,
    prompt: str,
    *,
    model: str = PLAIN_MODEL,
    timeout: float = 120.0,
    **params: Any,
) -> Exchange:
    """POST a streaming chat completion and time every SSE chunk as it arrives."""
    body = orjson.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}], **params}
    )
    ex = Exchange(request_id=request_id)
    headers = {"Content-Type": "application/json", "x-request-id": request_id}
    try:
        async with asyncio.timeout(timeout):
            ex.sent_at = time.time()
            async with session.post(f"{base_url}/v1/chat/completions", data=body, headers=headers) as resp:
                ex.status = resp.status
                if resp.status != 200:
                    ex.error = f"HTTP {resp.status}: {(await resp.text())[:300]}"
                    return ex
                async for line in resp.content:
                    now = time.time()
                    if not line.startswith(b"data: "):
                        continue
                    payload = line[6:].strip()
                    if payload == b"[DONE]":
                        ex.done_at = now
                        break
                    chunk = orjson.loads(payload)
                    if "error" in chunk:
                        ex.error = str(chunk["error"])[:300]
                        continue
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        content = delta.get("content") or ""
                        reasoning = delta.get("reasoning_content") or ""
                        if content or reasoning:
                            ex.deltas.append((now, content, reasoning))
                        if choice.get("finish_reason"):
                            ex.finish_reason = choice["finish_reason"]
    except TimeoutError:
        ex.error = f"no complete answer within {timeout:.0f} s"
    except aiohttp.ClientError as exc:
        ex.error = f"{type(exc).__name__}: {exc}"
    return ex


async def plain_chat(
    session: aiohttp.ClientSession,
    base_url: str,
    request_id: str,
    prompt: str,
    *,
    timeout: float = 300.0,
    model: str = PLAIN_MODEL,
) -> tuple[int, str, float, float]:
    """A non-streaming chat completion: (status, answer text or error body, sent_at, answered_at)."""
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})
    headers = {"Content-Type": "application/json", "x-request-id": request_id}
    sent = time.time()
    try:
        async with asyncio.timeout(timeout):
            async with session.post(f"{base_url}/v1/chat/completions", data=body, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
    except TimeoutError:
        return 0, f"no answer within {timeout:.0f} s", sent, time.time()
    except aiohttp.ClientError as exc:
        return 0, f"{type(exc).__name__}: {exc}", sent, time.time()
    done = time.time()
    if status != 200:
        return status, raw.decode(errors="replace")[:300], sent, done
    data = orjson.loads(raw)
    return status, data["choices"][0]["message"].get("content") or "", sent, done


async def wait_idle(session: aiohttp.ClientSession, base_url: str, timeout: float = 30.0) -> bool:
    """Wait until ``/health`` says the worker is ``ready`` (the previous job's clean-up is over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{base_url}/health") as resp:
                body = await resp.json(content_type=None)
            if resp.status == 200 and body.get("components", {}).get("worker", {}).get("state") == "ready":
                return True
        except (aiohttp.ClientError, ValueError):
            pass
        await asyncio.sleep(0.05)  # polling another process's state, with a deadline
    return False


# --------------------------------------------------------------------------- log lines

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3}) ")


def log_times(path: Path, pattern: str) -> dict[str, float]:
    """``{group(1): wall time}`` for every line of a process log whose message matches ``pattern``.

    The processes log local time with millisecond resolution (``shared/logging.py``).
    """
    found: dict[str, float] = {}
    regex = re.compile(pattern)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        stamp = _LOG_LINE.match(line)
        hit = regex.search(line)
        if stamp and hit:
            when = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
            found.setdefault(hit.group(1), when + int(stamp.group(2)) / 1000)
    return found


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# --------------------------------------------------------------------------- vantage points inside the stack


class ProxyTap:
    """A second subscriber of the stream proxy's ``proxy.sock``: when each decoded event left the proxy.

    ``flows`` maps a GenerateContent flow id to ``[(arrival time, message), ...]`` in order. The
    worker is the first subscriber; this one only listens.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.flows: dict[str, list[tuple[float, Any]]] = {}
        self.order: list[str] = []
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ProxyTap:
        from shared import channel, protocol

        self._conn = await channel.connect(self.path)
        await self._conn.send(protocol.Subscribe())
        self._task = asyncio.create_task(self._collect(), name="proxy-tap")
        return self

    async def _collect(self) -> None:
        async for msg in self._conn:
            now = time.time()
            flow = getattr(msg, "id", None)
            if flow is None:
                continue
            if flow not in self.flows:
                self.flows[flow] = []
                self.order.append(flow)
            self.flows[flow].append((now, msg))

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._conn is not None:
            await self._conn.close()

    def content_times(self, flow: str) -> list[float]:
        return [t for t, msg in self.flows.get(flow, []) if msg.type == "content" and msg.text]


@dataclass
class DirectJob:
    """One job sent straight to ``worker.sock`` the way the API server sends it, with its timings."""

    request_id: str
    sent_at: float
    #: (arrival time, message type, text) of every message for this job.
    messages: list[tuple[float, str, str]]
    timings: dict[str, float]
    error: str | None = None

    @property
    def first_token_at(self) -> float | None:
        for t, kind, text in self.messages:
            if kind in ("content", "reasoning") and text:
                return t
        return None


async def direct_job(
    path: Path, request_id: str, prompt: str, *, model: str = PLAIN_MODEL, timeout: float = 120.0, **job: Any
) -> DirectJob:
    """Submit one job as a second protocol client of the worker and collect ``Done.timings``.

    The worker's per-job timings travel in ``Done.timings`` to the API server, which does not pass
    them on to HTTP clients; this is the only way to read them without changing the worker or the API.
    """
    from shared import channel, protocol

    conn = await channel.connect(path)
    out = DirectJob(request_id=request_id, sent_at=time.time(), messages=[], timings={})
    try:
        async with asyncio.timeout(timeout):
            out.sent_at = time.time()
            await conn.send(
                protocol.JobSubmit(
                    id=request_id,
                    job=protocol.Job(
                        model=model, messages=[{"role": "user", "content": prompt}], stream=True, **job
                    ),
                )
            )
            async for msg in conn:
                if getattr(msg, "id", None) != request_id:
                    continue
                out.messages.append((time.time(), msg.type, getattr(msg, "text", "") or ""))
                if msg.type == "error":
                    out.error = f"{msg.kind}: {msg.message}"
                if msg.type == "done":
                    out.timings = dict(msg.timings)
                    break
    except TimeoutError:
        out.error = f"no done within {timeout:.0f} s"
    finally:
        await conn.close()
    return out


# --------------------------------------------------------------------------- CPU time per process

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 when it is gone); 1/CLK_TCK resolution."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def process_groups(stack: Any) -> dict[str, list[int]]:
    """The stack's processes grouped as in the memory benchmark, plus the simulator."""
    from aistudio_sim.processes import cmdline, descendants

    groups: dict[str, list[int]] = {
        "api_server": sorted(stack.tree("api_server")),
        "stream_proxy": sorted(stack.tree("stream_proxy")),
        "simulator": sorted(stack.tree("simulator")),
        "browser_worker": [],
        "chromium": [],
        "playwright driver": [],
    }
    worker = stack.pid("browser_worker")
    if worker:
        groups["browser_worker"] = [worker]
        for pid in sorted(descendants(worker)):
            exe = Path((cmdline(pid) or [""])[0].split(" ", 1)[0]).name.lower()
            groups["playwright driver" if exe == "node" else "chromium"].append(pid)
    return groups


def cpu_by_group(groups: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}
