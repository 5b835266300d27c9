"""Chromium's memory around very large prompts: idle, after N of the largest accepted prompts (3.5 MB), after M
ordinary jobs.

The figure is the resident memory (VmRSS, summed) of every Chromium process under the worker: the
browser, the renderer of the AI Studio page, the GPU, network and storage helpers and the zygotes.
VmRSS counts pages shared between those processes once per process, so the sum is larger than
what the tree really takes (``memory`` reports Pss); what this benchmark is about is how far it
moves. The renderer, where the page's DOM and JS heap live, is also shown alone, and the Playwright
driver (Node, not Chromium), the worker's own Python process and the API server (which receives each
large request body and sends it on as one ``JobSubmit`` frame) for comparison: a worker that kept
something of every job grows by about one prompt copy per large job in the middle phase.

Phases, each read three times 0.5 s apart once the worker is ``ready`` and 1 s has passed: idle
(after one small job that selects the model), right after each of N jobs with the largest prompt the API
accepts for the model (``LARGEST_ACCEPTED_BYTES``, 3.5 MB)
(``bench.prompt_size.make_prompt``: mixed ASCII, accented, CJK and emoji text over many lines), and
after M ordinary small jobs that follow them. A page that keeps what the large prompts left behind
shows it in the last phase. The worker's log gives each job's clean-up (answer complete → page
ready), the cost of whatever the worker does to give the memory back.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from aistudio_sim.processes import cmdline, descendants, rss_bytes
from bench.common import PLAIN_MODEL, BenchResult, log_times, nonce, stream_chat, wait_idle
from bench.prompt_size import LARGEST_ACCEPTED_BYTES, MB, make_prompt

MIB = 1024 * 1024
LARGE_PROMPT_BYTES = LARGEST_ACCEPTED_BYTES
LARGE = f"{LARGE_PROMPT_BYTES / MB:g} MB"


def chromium_rss(worker_pid: int) -> dict[str, float]:
    """VmRSS in MiB of the worker's Chromium processes: ``total``, ``renderer``, and ``driver`` (Node);
    ``worker``: the worker's own Python process."""
    out = {
        "total": 0.0,
        "renderer": 0.0,
        "driver": 0.0,
        "processes": 0.0,
        "worker": rss_bytes(worker_pid) / MIB if worker_pid else 0.0,
    }
    for pid in descendants(worker_pid) if worker_pid else ():
        line = " ".join(cmdline(pid))  # Chromium's helpers rewrite their argv into one string
        exe = Path(line.split(" ", 1)[0]).name.lower()
        rss = rss_bytes(pid) / MIB
        if exe == "node":
            out["driver"] += rss
        elif exe.startswith("chrom"):
            out["total"] += rss
            out["processes"] += 1
            if "--type=renderer" in line:
                out["renderer"] += rss
    return out


async def _settled_readings(
    session: aiohttp.ClientSession, stack: Any, count: int = 3
) -> list[dict[str, float]]:
    await wait_idle(session, stack.base_url, timeout=120)
    await asyncio.sleep(1)  # let the page finish what it does after "ready" before reading memory
    worker = await asyncio.to_thread(stack.pid, "browser_worker")
    api = await asyncio.to_thread(stack.pid, "api_server")
    samples = []
    for i in range(count):
        if i:
            await asyncio.sleep(0.5)  # spaced readings of another process's memory
        samples.append({**chromium_rss(worker), "api_server": rss_bytes(api) / MIB if api else 0.0})
    return samples


async def run(stack: Any, quick: bool = False) -> BenchResult:
    result = BenchResult("chromium_memory")
    large_jobs, small_jobs = (2, 5) if quick else (5, 10)
    base = stack.base_url
    large_ids: list[str] = []
    small_ids: list[str] = []
    errors: list[str] = []
    after_each: list[dict[str, float]] = []
    async with aiohttp.ClientSession() as session:
        await wait_idle(session, base, timeout=120)
        warm = await stream_chat(
            session, base, f"bench-chmem-warmup-{nonce()}", "warm up #sim:words=3", model=PLAIN_MODEL
        )
        if warm.error:
            errors.append(f"warm-up: {warm.error}")
        idle = await _settled_readings(session, stack)
        for i in range(large_jobs):
            tag = nonce()
            rid = f"bench-chmem-large-{i}-{tag}"
            large_ids.append(rid)
            ex = await stream_chat(
                session,
                base,
                rid,
                make_prompt(LARGE_PROMPT_BYTES, tag, seed=100 + i),
                model=PLAIN_MODEL,
                timeout=300,
            )
            if ex.error or not ex.text:
                errors.append(f"{LARGE} job {i + 1}: {ex.error or 'no answer'}")
            after_each += await _settled_readings(session, stack, count=1)
        after_large = await _settled_readings(session, stack)
        t0 = time.monotonic()
        for i in range(small_jobs):
            tag = nonce()
            rid = f"bench-chmem-small-{i}-{tag}"
            small_ids.append(rid)
            ex = await stream_chat(
                session, base, rid, f"ordinary question {tag} #sim:words=20", model=PLAIN_MODEL
            )
            if ex.error or not ex.text:
                errors.append(f"small job {i + 1}: {ex.error or 'no answer'}")
        small_seconds = time.monotonic() - t0
        after_small = await _settled_readings(session, stack)

    worker_log = stack.log_dir / "browser_worker.log"
    answered = log_times(worker_log, r"\[(\S+)\] answer complete")
    readies = log_times(worker_log, r"\[(\S+)\] state busy -> ready")

    def clean_ups(ids: list[str]) -> list[float]:
        return [round((readies[r] - answered[r]) * 1000, 1) for r in ids if r in answered and r in readies]

    phases = (
        ("idle", idle),
        (f"after {large_jobs} x {LARGE} prompts", after_large),
        (f"then after {small_jobs} small jobs", after_small),
    )
    for label, samples in phases:
        result.add(f"chromium tree RSS: {label}", "MiB", [s["total"] for s in samples])
    for label, samples in phases:
        result.add(f"  renderer RSS: {label}", "MiB", [s["renderer"] for s in samples])
    result.add(
        f"  chromium tree RSS right after each {LARGE} job (n={len(after_each)})",
        "MiB",
        [s["total"] for s in after_each],
    )
    if idle and after_small:
        result.add(
            "  still held after the small jobs (minus idle)",
            "MiB",
            [min(s["total"] for s in after_small) - min(s["total"] for s in idle)],
        )
    for label, samples in phases:
        result.add(f"  playwright driver (Node) RSS: {label}", "MiB", [s["driver"] for s in samples])
    for label, samples in phases:
        result.add(f"  browser_worker (Python) RSS: {label}", "MiB", [s["worker"] for s in samples])
    for label, samples in phases:
        result.add(f"  api_server RSS: {label}", "MiB", [s["api_server"] for s in samples])
    result.add(f"clean-up after a {LARGE} job (answer complete -> page ready)", "ms", clean_ups(large_ids))
    result.add("clean-up after a small job (answer complete -> page ready)", "ms", clean_ups(small_ids))
    result.notes.append(
        "VmRSS summed over the worker's Chromium processes (shared pages counted once per "
        "process); Pss of every process is in the memory benchmark"
    )
    if errors:
        result.notes.append(f"{len(errors)} job(s) failed: " + "; ".join(errors[:3]))
    result.raw = {
        "idle": idle,
        "after_each_large": after_each,
        "after_large": after_large,
        "after_small": after_small,
        "large_ids": large_ids,
        "small_ids": small_ids,
        "small_jobs_seconds": small_seconds,
        "errors": errors,
    }
    return result
