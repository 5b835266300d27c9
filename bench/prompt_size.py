"""Large prompts: how long until the simulator has the whole prompt, and does it arrive byte-exact.

Prompts of 1 KB (the baseline), 100 KB, 1 MB and 3.5 MB, about the largest that the API accepts for a
1,048,576-token model (UTF-8 bytes of the user message; mixed ASCII,
accented, CJK and emoji text over many lines; ``#sim:echo`` off, the answer is 5 words). The figure is
``received_at`` (the simulator has read the whole GenerateContent body) minus the time the client
started sending. The simulator's recorded ``prompt`` is compared by sha256 with the prompt text the
worker is expected to type (``browser_worker.mapping.prompt.build_prompt`` of the same messages: ``User:\\n`` +
message + ``\\n``).

The time is split by the API's ``submitted … to the worker`` log line and by the stream proxy's
``stream_started`` event (seen by a second ``proxy.sock`` subscriber; its ``ts`` is when the
interceptor had the browser's whole request).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any

import aiohttp

from bench.common import (
    PLAIN_MODEL,
    BenchResult,
    ProxyTap,
    direct_job,
    log_times,
    ms,
    nonce,
    stream_chat,
    wait_idle,
)
from browser_worker.mapping.prompt import build_prompt

KB = 1000
MB = 1000 * 1000
TARGET_1MB_MS = 3000.0
#: The largest prompt the API accepts for the simulator's 1,048,576-token models: this mixed text estimates
#: at ~0.31 tokens per byte, so 4 MB (~1.23 M tokens) is refused as context_length_exceeded since issue 14.10.
LARGEST_ACCEPTED_BYTES = 3_500_000

_WORDS = (
    "alpha",
    "proxy",
    "stream",
    "naïve",
    "café",
    "東京",
    "データ",
    "🚀",
    "λ",
    "x²",
    "≤",
    "—",
    "“quoted”",
    "tab\there",
    "back\\slash",
    "{json: [1, 2]}",
    "<tag>",
    "&amp;",
    "line",
)


def make_prompt(size: int, tag: str, seed: int = 7) -> str:
    """A prompt of exactly ``size`` UTF-8 bytes: a directive line, filler lines, the tag on the last line."""
    rng = random.Random(seed)
    head = f"#sim:words=5 prompt-size benchmark {tag}\n"
    tail = f"\nend of prompt {tag}"
    budget = size - len(head.encode()) - len(tail.encode())
    parts: list[str] = []
    used = 0
    while used < budget:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14))) + "\n"
        parts.append(line)
        used += len(line.encode())
    body = "".join(parts).encode()[:budget].decode("utf-8", "ignore")
    body += "x" * (budget - len(body.encode()))  # pad what a cut multibyte character left
    prompt = head + body + tail
    assert len(prompt.encode()) == size
    return prompt


async def run(stack: Any, quick: bool = False) -> BenchResult:
    result = BenchResult("prompt_size")
    plan = (
        [(1 * KB, 1), (100 * KB, 1), (1 * MB, 1), (LARGEST_ACCEPTED_BYTES, 1)]
        if quick
        else [(1 * KB, 3), (100 * KB, 3), (1 * MB, 3), (LARGEST_ACCEPTED_BYTES, 2)]
    )
    base = stack.base_url
    rows: list[dict[str, Any]] = []
    worker_timings: dict[int, dict[str, Any]] = {}
    async with aiohttp.ClientSession() as session, ProxyTap(stack.run_dir / "proxy.sock") as tap:
        await wait_idle(session, base, timeout=120)  # select the model first: not counted
        await stream_chat(
            session, base, f"bench-size-warmup-{nonce()}", "warm up #sim:words=3", model=PLAIN_MODEL
        )
        for size, repeats in plan:
            for i in range(repeats):
                await wait_idle(session, base, timeout=120)
                await asyncio.to_thread(stack.sim_reset)
                tag = nonce()
                prompt = make_prompt(size, tag, seed=size + i)
                expected = build_prompt([{"role": "user", "content": prompt}]).text
                seen = len(tap.order)
                ex = await stream_chat(
                    session, base, f"bench-size-{size}-{i}-{tag}", prompt, model=PLAIN_MODEL, timeout=300
                )
                row: dict[str, Any] = {
                    "size": size,
                    "request_id": ex.request_id,
                    "error": ex.error,
                    "sent_at": ex.sent_at,
                    "answered": bool(ex.text),
                }
                try:
                    rec = await asyncio.to_thread(stack.sim_inspect, "requests/last", timeout=60)
                except Exception as exc:  # noqa: BLE001 - a missing record is reported, not fatal
                    rec = None
                    row["error"] = row["error"] or f"no simulator record: {exc}"
                row["proxy_flows"] = {flow: [m.type for _, m in tap.flows[flow]] for flow in tap.order[seen:]}
                started = [
                    m for flow in tap.order[seen:] for _, m in tap.flows[flow] if m.type == "stream_started"
                ]
                if started:
                    row["proxy_has_request_ms"] = ms(started[-1].ts - ex.sent_at)
                if rec is not None and tag in (rec.get("prompt") or ""):
                    got = (rec.get("prompt") or "").encode()
                    row.update(
                        to_sim_ms=ms(rec["received_at"] - ex.sent_at),
                        prompt_bytes_at_sim=len(got),
                        byte_exact=hashlib.sha256(got).hexdigest()
                        == hashlib.sha256(expected.encode()).hexdigest(),
                    )
                    if started:
                        row["proxy_to_sim_ms"] = ms(rec["received_at"] - started[-1].ts)
                elif rec is None and not row["error"]:
                    row["error"] = "the simulator recorded no request"
                rows.append(row)
            if size >= 1 * MB and not quick:
                # the worker's own timings (settings, fill, submit) for this size, read over worker.sock
                await wait_idle(session, base, timeout=120)
                tag = nonce()
                job = await direct_job(
                    stack.run_dir / "worker.sock",
                    f"bench-size-direct-{size}-{tag}",
                    make_prompt(size, tag, seed=size),
                    model=PLAIN_MODEL,
                    timeout=300,
                )
                worker_timings[size] = {"timings": job.timings, "error": job.error}
    submitted = log_times(stack.log_dir / "api_server.log", r"submitted (\S+) to the worker")
    for row in rows:
        if row["request_id"] in submitted:
            row["api_in_ms"] = ms(submitted[row["request_id"]] - row["sent_at"])
    result.raw = {"rows": rows, "worker_timings": {str(k): v for k, v in worker_timings.items()}}
    for size, _ in plan:
        mine = [r for r in rows if r["size"] == size]
        label = _label(size)
        values = [r["to_sim_ms"] for r in mine if "to_sim_ms" in r]
        if size == 1 * KB:
            name = f"baseline: {label} prompt, request -> sim has it (n={len(values)})"
        else:
            name = f"{label} prompt, request -> sim has it (n={len(values)})"
        result.add(name, "ms", values, target=TARGET_1MB_MS if size == 1 * MB else None)
        if size >= 1 * MB:
            result.add(
                f"  {label}: client -> API submits to worker",
                "ms",
                [r["api_in_ms"] for r in mine if "api_in_ms" in r],
            )
            result.add(
                f"  {label}: request -> proxy has the browser's request",
                "ms",
                [r["proxy_has_request_ms"] for r in mine if "proxy_has_request_ms" in r],
            )
            result.add(
                f"  {label}: proxy -> sim has whole body",
                "ms",
                [r["proxy_to_sim_ms"] for r in mine if "proxy_to_sim_ms" in r],
            )
            t = worker_timings.get(size, {}).get("timings") or {}
            if {"settings", "fill", "submit"} <= t.keys():
                for phase, value in (
                    ("settings", t["settings"]),
                    ("fill", t["fill"] - t["settings"]),
                    ("submit", t["submit"] - t["fill"]),
                ):
                    result.add(f"  {label}: worker timings, {phase} (1 job over worker.sock)", "ms", [value])
    checked = [r for r in rows if "byte_exact" in r]
    exact = sum(1 for r in checked if r["byte_exact"])
    result.add(
        f"prompts byte-exact at the sim ({exact}/{len(checked)})",
        "fraction",
        [exact / len(checked)] if checked else [],
        target=1.0,
        op=">=",
    )
    failed = [r for r in rows if r.get("error") or "to_sim_ms" not in r]
    if failed:
        result.notes.append(
            f"{len(failed)} prompt(s) failed: "
            + "; ".join(f"{_label(r['size'])}: {r.get('error')}" for r in failed[:3])
        )
    return result


def _label(size: int) -> str:
    return f"{size // MB} MB" if size >= MB else f"{size // KB} KB"
