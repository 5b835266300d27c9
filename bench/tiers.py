"""First token per capture tier: the stream proxy, the stream helper, the page (DOM).

The same warm request (``#sim:words=40 #sim:chunks=8 #sim:delay_ms=50``, the plain model, the
previous job's clean-up over) goes to three stacks: the shared one (stream tier), one with
``STREAM_PORT=0`` and the simulator as ``HELPER_ENDPOINT`` (helper tier), and one with
``STREAM_PORT=0`` alone (DOM tier). Two figures per request, both from the same wall clock:

* *relay*: the simulator's first byte → the client's first token (what the tier itself costs);
* *added*: the client's time to first token minus the simulator's own time to first byte (everything
  the proxy adds, as in ``first_token``).

The helper and DOM stacks are started here and stopped again (about 15 s each).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bench.common import PLAIN_MODEL, BenchResult, ms, nonce, stream_chat, wait_idle

PROMPT = "tier {tag} #sim:words=40 #sim:chunks=8 #sim:delay_ms=50"
#: The first-token target of ``first_token`` applies to every tier.
ADDED_TARGET_MS = 150.0


async def _samples(stack: Any, n: int) -> list[tuple[float, float]]:
    """(relay ms, added ms) for ``n`` warm requests."""
    out: list[tuple[float, float]] = []
    async with aiohttp.ClientSession() as session:
        for i in range(2):  # model and settings settle; not counted
            await wait_idle(session, stack.base_url)
            await stream_chat(
                session,
                stack.base_url,
                f"bench-tier-warmup-{i}-{nonce()}",
                "warm up #sim:words=3",
                model=PLAIN_MODEL,
            )
        tags: list[tuple[str, Any]] = []
        for i in range(n):
            await wait_idle(session, stack.base_url)
            tag = nonce()
            ex = await stream_chat(
                session, stack.base_url, f"bench-tier-{i}-{tag}", PROMPT.format(tag=tag), model=PLAIN_MODEL
            )
            tags.append((tag, ex))
    records = await asyncio.to_thread(stack.sim_requests)
    for tag, ex in tags:
        rec = next((r for r in records if tag in (r.get("prompt") or "")), None)
        first = ex.first_token_at
        if rec is None or first is None or rec.get("first_byte_at") is None:
            continue
        sim_ttfb = rec["first_byte_at"] - rec["received_at"]
        out.append((ms(first - rec["first_byte_at"]), ms(first - ex.sent_at - sim_ttfb)))
    return out


async def _own_stack(n: int, **options: Any) -> list[tuple[float, float]]:
    from aistudio_sim.stack import Stack

    stack = Stack(**options)
    await asyncio.to_thread(stack.start)
    try:
        return await _samples(stack, n)
    finally:
        await asyncio.to_thread(stack.stop)


async def run(stack: Any, quick: bool = False) -> BenchResult:
    result = BenchResult("tiers")
    n = 4 if quick else 9
    await asyncio.to_thread(stack.sim_reset)
    series = {
        "stream": await _samples(stack, n),
        "helper": await _own_stack(n, stream_port_enabled=False, helper=True),
        "dom": await _own_stack(n, stream_port_enabled=False),
    }
    for tier, rows in series.items():
        result.add(
            f"relay: simulator first byte → client first token, {tier} tier", "ms", [r for r, _ in rows]
        )
    for tier, rows in series.items():
        result.add(
            f"added first-token latency, {tier} tier", "ms", [a for _, a in rows], target=ADDED_TARGET_MS
        )
    result.raw = {tier: [{"relay_ms": r, "added_ms": a} for r, a in rows] for tier, rows in series.items()}
    return result
