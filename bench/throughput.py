"""Queue throughput: 50 short requests from 10 concurrent clients, each answered exactly once.

Ten client tasks each send five non-streaming requests one after the other (a closed loop: a client
sends its next request when the previous answer is in). Every prompt carries a unique tag, and the
simulator's default answer repeats the prompt's last line, so an answer proves which request it
belongs to. *No loss* means: every request got a 200 whose answer holds its own tag and no other,
and the simulator recorded each tag exactly once (nothing was sent upstream twice or dropped).

Baseline in the same run: one client sending ten requests back to back. With one browser page the
worker runs one job at a time; concurrency can only hide the client's and the API's turnaround.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp

from bench.common import BenchResult, log_times, nonce, percentile, plain_chat, wait_idle


async def _client(
    session: aiohttp.ClientSession,
    base: str,
    count: int,
    tags: list[str],
    out: list[dict[str, Any]],
    label: str,
) -> None:
    for _ in range(count):
        tag = nonce()
        tags.append(tag)
        status, text, sent, done = await plain_chat(
            session, base, f"bench-{label}-{tag}", f"queue test {tag}"
        )
        out.append(
            {
                "tag": tag,
                "status": status,
                "text": text,
                "latency_ms": round((done - sent) * 1000, 3),
                "sent_at": sent,
                "done_at": done,
            }
        )


async def run(stack: Any, quick: bool = False) -> BenchResult:
    result = BenchResult("throughput")
    clients, per_client, sequential = (5, 4, 5) if quick else (10, 5, 10)
    base = stack.base_url
    await asyncio.to_thread(stack.sim_reset)
    connector = aiohttp.TCPConnector(limit=clients + 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_idle(session, base)
        seq_rows: list[dict[str, Any]] = []
        seq_tags: list[str] = []
        t0 = time.monotonic()
        await _client(session, base, sequential, seq_tags, seq_rows, "seq")
        seq_wall = time.monotonic() - t0
        await wait_idle(session, base)
        rows: list[dict[str, Any]] = []
        tags: list[str] = []
        t0 = time.monotonic()
        async with asyncio.TaskGroup() as tg:
            for _ in range(clients):
                tg.create_task(_client(session, base, per_client, tags, rows, "conc"))
        wall = time.monotonic() - t0
    records = await asyncio.to_thread(stack.sim_requests)
    worker_log = stack.log_dir / "browser_worker.log"
    starts = log_times(worker_log, r"job (\S+): model")
    answered = log_times(worker_log, r"\[(\S+)\] answer complete")
    readies = log_times(worker_log, r"\[(\S+)\] state busy -> ready")

    def service(label: str, rows: list[dict[str, Any]]) -> dict[str, list[float]]:
        ids = [f"bench-{label}-{r['tag']}" for r in rows]
        out: dict[str, list[float]] = {"answer": [], "clean_up": [], "idle_between": []}
        ordered = sorted((starts[i], i) for i in ids if i in starts)
        for (start, rid), nxt in zip(ordered, [*ordered[1:], None], strict=True):
            if rid in answered:
                out["answer"].append(round((answered[rid] - start) * 1000, 1))
                if rid in readies:
                    out["clean_up"].append(round((readies[rid] - answered[rid]) * 1000, 1))
                    if nxt is not None:
                        out["idle_between"].append(round((nxt[0] - readies[rid]) * 1000, 1))
        return out

    seq_service, conc_service = service("seq", seq_rows), service("conc", rows)
    slow = []  # the worker's log lines of any clean-up over a second, as evidence
    lines = worker_log.read_text(errors="replace").splitlines() if worker_log.exists() else []
    for rid in sorted(r for r in answered if r in readies and readies[r] - answered[r] > 1.0):
        slow.append(
            {
                "request_id": rid,
                "clean_up_ms": round((readies[rid] - answered[rid]) * 1000, 1),
                "log": [line for line in lines if f"[{rid}]" in line][-12:],
            }
        )
    seen = Counter()
    for rec in records:
        prompt = rec.get("prompt") or ""
        for tag in (*tags, *seq_tags):
            if tag in prompt:
                seen[tag] += 1
    all_tags = set(tags)
    lost, dup, wrong = [], [], []
    for row in rows:
        others = [t for t in all_tags if t != row["tag"] and t in row["text"]]
        if row["status"] != 200 or row["tag"] not in row["text"]:
            lost.append(row["tag"])
        if others:
            wrong.append(row["tag"])
        if seen[row["tag"]] != 1:
            dup.append((row["tag"], seen[row["tag"]]))
    total = clients * per_client
    exact = total - len(set(lost) | set(wrong) | {t for t, _ in dup})
    lat = [r["latency_ms"] for r in rows]
    seq_lat = [r["latency_ms"] for r in seq_rows]
    result.add(f"requests/s, {clients} clients x {per_client} requests", "req/s", [total / wall])
    result.add(
        f"baseline: requests/s, 1 client x {sequential} back to back", "req/s", [sequential / seq_wall]
    )
    result.add(f"latency, {clients} clients (median = p50)", "ms", lat)
    result.add(f"latency p95, {clients} clients", "ms", [percentile(lat, 95)] if lat else [])
    result.add(f"baseline: latency, 1 client (n={len(seq_lat)})", "ms", seq_lat)
    for label, svc in ((f"{clients} clients", conc_service), ("1 client", seq_service)):
        result.add(f"  worker, {label}: job start -> answer complete", "ms", svc["answer"])
        result.add(f"  worker, {label}: answer complete -> page ready", "ms", svc["clean_up"])
        result.add(f"  worker, {label}: ready -> next job starts", "ms", svc["idle_between"])
    result.add(f"answered exactly once ({exact}/{total})", "fraction", [exact / total], target=1.0, op=">=")
    if lost or dup or wrong:
        result.notes.append(
            f"lost {len(lost)}, sent upstream more or less than once {dup[:5]}, "
            f"answer of another request {len(wrong)}"
        )
    result.raw = {
        "clients": clients,
        "per_client": per_client,
        "wall_s": wall,
        "sequential_wall_s": seq_wall,
        "rows": [{k: v for k, v in r.items() if k != "text"} | {"answer": r["text"][:120]} for r in rows],
        "sequential_rows": [{k: v for k, v in r.items() if k != "text"} for r in seq_rows],
        "upstream_counts": dict(seen),
        "slow_clean_ups": slow,
        "worker_service_ms": {"concurrent": conc_service, "sequential": seq_service},
    }
    return result
