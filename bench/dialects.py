"""First-token overhead per API dialect (issue 18), through the whole demo stack.

The same warm streamed request (``PLAIN_MODEL``, ``#sim:words=12``) is sent through each dialect in
``DIALECTS``, round by round (the order turns each round, so drift in the machine's load is shared). Per
request: the client's time to the first answer text minus the simulator's own time to first byte (as
``first_token`` in ``bench/latency.py``). Rows: the added first token per dialect, and per other dialect
its difference to chat completions within the same round (goal: within 5 ms).

A dialect is a ``Dialect``: its path, its body, its headers and how to find answer text in one of its
``data:`` events; another dialect adds a row by adding an entry.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from bench.common import PLAIN_MODEL, BenchResult, Exchange, ms, nonce, wait_idle

#: Goal for a dialect's added first token over chat completions' (median of the per-round differences).
WITHIN_CHAT_MS = 5.0


@dataclass(frozen=True)
class Dialect:
    name: str
    path: Callable[[str], str]
    body: Callable[[str, str], dict[str, Any]]
    #: The answer text in one decoded ``data:`` event ("" for none).
    text: Callable[[dict[str, Any]], str]
    headers: tuple[tuple[str, str], ...] = ()


def _chat_text(event: dict[str, Any]) -> str:
    return "".join((c.get("delta") or {}).get("content") or "" for c in event.get("choices") or ())


def _gemini_text(event: dict[str, Any]) -> str:
    parts = [p for c in event.get("candidates") or () for p in (c.get("content") or {}).get("parts") or ()]
    return "".join(p.get("text") or "" for p in parts if not p.get("thought"))


def _responses_text(event: dict[str, Any]) -> str:
    return str(event.get("delta") or "") if event.get("type") == "response.output_text.delta" else ""


def _anthropic_text(event: dict[str, Any]) -> str:
    delta = event.get("delta") or {}
    return str(delta.get("text") or "") if delta.get("type") == "text_delta" else ""


DIALECTS = (
    Dialect(
        "chat",
        lambda model: "/v1/chat/completions",
        lambda model, prompt: {
            "model": model,
            "stream": True,
            "messages": [{"role": "user", "content": prompt}],
        },
        _chat_text,
    ),
    Dialect(
        "gemini",
        lambda model: f"/v1beta/models/{model}:streamGenerateContent?alt=sse",
        lambda model, prompt: {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
        _gemini_text,
        (("x-goog-api-key", "bench"),),
    ),
    Dialect(
        "responses",
        lambda model: "/v1/responses",
        lambda model, prompt: {"model": model, "stream": True, "input": prompt},
        _responses_text,
    ),
    Dialect(
        "anthropic",
        lambda model: "/v1/messages",
        lambda model, prompt: {
            "model": model,
            "stream": True,
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": prompt}],
        },
        _anthropic_text,
        (("anthropic-version", "2023-06-01"),),
    ),
)


async def stream_dialect(
    session: aiohttp.ClientSession, base_url: str, dialect: Dialect, request_id: str, prompt: str
) -> Exchange:
    """One streamed request of ``dialect``, timing the events that carry answer text."""
    ex = Exchange(request_id=request_id)
    headers = {"Content-Type": "application/json", "x-request-id": request_id, **dict(dialect.headers)}
    body = orjson.dumps(dialect.body(PLAIN_MODEL, prompt))
    try:
        async with asyncio.timeout(120):
            ex.sent_at = time.time()
            async with session.post(base_url + dialect.path(PLAIN_MODEL), data=body, headers=headers) as resp:
                ex.status = resp.status
                if resp.status != 200:
                    ex.error = f"HTTP {resp.status}: {(await resp.text())[:300]}"
                    return ex
                async for line in resp.content:
                    now = time.time()
                    payload = line[6:].strip() if line.startswith(b"data: ") else b""
                    if not payload or payload == b"[DONE]":
                        continue
                    text = dialect.text(orjson.loads(payload))
                    if text:
                        ex.deltas.append((now, text, ""))
                ex.done_at = time.time()
    except TimeoutError:
        ex.error = "no complete answer within 120 s"
    except aiohttp.ClientError as exc:
        ex.error = f"{type(exc).__name__}: {exc}"
    return ex


async def run(stack: Any, quick: bool = False) -> BenchResult:
    result = BenchResult("dialects")
    rounds = 5 if quick else 11
    base = stack.base_url
    await asyncio.to_thread(stack.sim_reset)
    sent: list[tuple[int, str, str, Exchange]] = []  # (round, dialect, tag, exchange)
    async with aiohttp.ClientSession() as session:
        for dialect in DIALECTS:  # warm up every path (imports, first use); not counted
            await wait_idle(session, base)
            await stream_dialect(
                session, base, dialect, f"bench-dialect-warmup-{nonce()}", "warm up #sim:words=3"
            )
        for i in range(rounds):
            order = DIALECTS[i % len(DIALECTS) :] + DIALECTS[: i % len(DIALECTS)]
            for dialect in order:
                await wait_idle(session, base)
                tag = nonce()
                ex = await stream_dialect(
                    session,
                    base,
                    dialect,
                    f"bench-{dialect.name}-{i}-{tag}",
                    f"{dialect.name} {tag} #sim:words=12",
                )
                sent.append((i, dialect.name, tag, ex))
    records = await asyncio.to_thread(stack.sim_requests)
    added: dict[tuple[int, str], float] = {}
    rows = []
    for i, name, tag, ex in sent:
        rec = next((r for r in records if tag in (r.get("prompt") or "")), None)
        row: dict[str, Any] = {"round": i, "dialect": name, "request_id": ex.request_id, "error": ex.error}
        first = ex.first_token_at
        if rec is not None and first is not None and rec.get("first_byte_at") is not None:
            sim_ttfb = rec["first_byte_at"] - rec["received_at"]
            row.update(client_ttft_ms=ms(first - ex.sent_at), added_ms=ms(first - ex.sent_at - sim_ttfb))
            added[(i, name)] = row["added_ms"]
        else:
            row["error"] = row["error"] or "no simulator record or no token"
        rows.append(row)
    result.raw = {"rows": rows, "model": PLAIN_MODEL, "rounds": rounds}
    for dialect in DIALECTS:
        samples = [v for (i, name), v in added.items() if name == dialect.name]
        result.add(f"added first token, {dialect.name} (n={len(samples)})", "ms", samples)
    for dialect in DIALECTS[1:]:
        diffs = [
            added[(i, dialect.name)] - added[(i, "chat")]
            for i in range(rounds)
            if (i, dialect.name) in added and (i, "chat") in added
        ]
        result.add(
            f"{dialect.name} minus chat, same round (n={len(diffs)})", "ms", diffs, target=WITHIN_CHAT_MS
        )
        if diffs:
            result.notes.append(
                f"{dialect.name}: per-round difference to chat, stdev {statistics.pstdev(diffs):.1f} ms"
            )
    return result
