"""Resident memory of each process, idle and after the load of the other benchmarks.

Pss (``/proc/<pid>/smaps_rollup``: shared pages split between the processes that map them), so the
browser's many processes are not counted several times over. ``browser_worker`` is the Python
process alone; the browser tree below it is reported as Chromium (every Chromium process) and the
Playwright driver (Node). Each phase is read three times, 0.5 s apart.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from aistudio_sim.processes import cmdline, descendants, rss_bytes
from bench.common import BenchResult, nonce, plain_chat, wait_idle

MIB = 1024 * 1024
PARTS = ("api_server", "stream_proxy", "browser_worker", "chromium", "playwright driver")


def snapshot(stack: Any) -> dict[str, float]:
    """Pss in MiB of each part right now."""
    out = {name: 0.0 for name in PARTS}
    for program in ("api_server", "stream_proxy"):
        out[program] = sum(rss_bytes(pid, True) for pid in stack.tree(program)) / MIB
    worker = stack.pid("browser_worker")
    if worker:
        out["browser_worker"] = rss_bytes(worker, True) / MIB
        for pid in descendants(worker):
            exe = Path((cmdline(pid) or [""])[0].split(" ", 1)[0]).name.lower()
            key = "playwright driver" if exe == "node" else "chromium"
            out[key] += rss_bytes(pid, True) / MIB
    out["processes under worker"] = float(len(descendants(worker))) if worker else 0.0
    return out


def readings(stack: Any, count: int = 3) -> list[dict[str, float]]:
    samples = []
    for i in range(count):
        if i:
            time.sleep(0.5)  # spaced readings of another process's memory
        samples.append(snapshot(stack))
    return samples


async def _small_load(stack: Any) -> None:
    async with aiohttp.ClientSession() as session:
        await wait_idle(session, stack.base_url)
        for _ in range(10):
            tag = nonce()
            await plain_chat(session, stack.base_url, f"bench-mem-{tag}", f"memory load {tag}")


async def run(
    stack: Any,
    idle: list[dict[str, float]],
    loaded_by: list[str],
    quick: bool = False,
    steps: list[tuple[str, dict[str, float]]] | None = None,
) -> BenchResult:
    """Idle readings come from the caller (taken right after start); ``steps`` are one reading after each bench."""
    result = BenchResult("memory")
    if not loaded_by:
        await _small_load(stack)
        loaded_by = ["10 short requests"]
    async with aiohttp.ClientSession() as session:
        await wait_idle(session, stack.base_url, timeout=60)
    after = await asyncio.to_thread(readings, stack)
    for part in PARTS:
        result.add(f"{part}: idle", "MiB", [s[part] for s in idle])
        result.add(f"{part}: after load", "MiB", [s[part] for s in after])
    total_idle = [sum(s[p] for p in PARTS) for s in idle]
    total_after = [sum(s[p] for p in PARTS) for s in after]
    result.add("all processes: idle", "MiB", total_idle)
    result.add("all processes: after load", "MiB", total_after)
    for name, reading in steps or []:
        result.add(f"  all processes, right after {name}", "MiB", [sum(reading[p] for p in PARTS)])
        result.add(f"  chromium, right after {name}", "MiB", [reading["chromium"]])
    result.notes.append("after: " + ", ".join(loaded_by))
    result.raw = {"idle": idle, "after": after, "loaded_by": loaded_by, "steps": steps or []}
    return result
