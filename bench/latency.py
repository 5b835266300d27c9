"""Added first-token latency and per-chunk relay latency, through the whole demo stack.

**First token** (``first_token``). For each request: the client's time to the first answer token
(request sent → first SSE chunk with text) minus the simulator's own time to first byte for the same
request (``first_byte_at - received_at`` from ``__sim__/requests``). What is left is what the proxy
adds: API, queue, worker (settings, fill, submit), the browser's request through the interceptor, and
the relay of the first event back. Three series:

* *warm*: same model and same settings every time, the previous job's clean-up finished (``/health``
  says ``ready``) before the next request is sent;
* *changed*: every request switches the model and changes temperature, top_p, max tokens and stop;
* *direct* (baseline for the API's share): the warm request sent straight to ``worker.sock`` as a
  second protocol client, which is also how the worker's own ``Done.timings`` (settings, fill,
  submit, first event) are read: the API does not pass them to HTTP clients.

The warm series is split by timestamps from the processes' own log lines (millisecond resolution):
client → API hands the job to the worker (``submitted … to the worker``) → the simulator has the
request (``received_at``) → simulator's first byte → client's first token.

**Relay** (``relay``). ``#sim:chunks=20 #sim:delay_ms=50``: the simulator writes one event per network
write and records the time of the first and the last write exactly. Write *k* is placed at
``first_byte_at + k·(last_byte_at − first_byte_at)/(writes − 1)`` (the pacing is regular; both ends
are exact). Per chunk: client arrival minus that send time. A second subscriber on ``proxy.sock``
sees the same events leave the stream proxy, which splits the path into *simulator → proxy
subscriber* and *proxy → worker → API → client*.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp

from bench.common import (
    OTHER_MODEL,
    PLAIN_MODEL,
    BenchResult,
    ProxyTap,
    cpu_by_group,
    direct_job,
    log_times,
    ms,
    nonce,
    process_groups,
    stream_chat,
    wait_idle,
)

WARM_PARAMS: dict[str, Any] = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 512, "stop": ["<END>"]}
CHANGED_PARAMS: list[dict[str, Any]] = [
    {"temperature": 0.2, "top_p": 0.5, "max_tokens": 300, "stop": ["<A>"]},
    {"temperature": 1.3, "top_p": 0.8, "max_tokens": 700, "stop": ["<B>", "<C>"]},
    {"temperature": 0.5, "top_p": 0.95, "max_tokens": 400, "stop": ["<D>"]},
]
RELAY_CHUNKS = 20
RELAY_DELAY_MS = 50


def _sim_by_tag(records: list[dict[str, Any]], tag: str) -> dict[str, Any] | None:
    for rec in records:
        if tag in (rec.get("prompt") or ""):
            return rec
    return None


async def run_first_token(stack: Any, quick: bool = False) -> BenchResult:
    result = BenchResult("first_token")
    n_warm, n_changed, n_direct = (5, 3, 3) if quick else (11, 7, 9)
    base = stack.base_url
    await asyncio.to_thread(stack.sim_reset)
    warm: list[tuple[str, Any]] = []
    changed: list[tuple[str, Any]] = []
    direct: list[tuple[str, Any]] = []
    direct_changed: list[tuple[str, Any]] = []
    n_direct_changed = 2 if quick else 4
    async with aiohttp.ClientSession() as session:
        for i in range(2):  # select the model and settle the settings; not counted
            await wait_idle(session, base)
            await stream_chat(
                session,
                base,
                f"bench-warmup-{i}-{nonce()}",
                "warm up #sim:words=3",
                model=PLAIN_MODEL,
                **WARM_PARAMS,
            )
        # warm API and direct samples alternate, so both see the same machine load
        for i in range(max(n_warm, n_direct)):
            if i < n_warm:
                await wait_idle(session, base)
                tag = nonce()
                ex = await stream_chat(
                    session,
                    base,
                    f"bench-warm-{i}-{tag}",
                    f"warm {tag} #sim:words=12",
                    model=PLAIN_MODEL,
                    **WARM_PARAMS,
                )
                warm.append((tag, ex))
            if i < n_direct:
                await wait_idle(session, base)
                tag = nonce()
                job = await direct_job(
                    stack.run_dir / "worker.sock",
                    f"bench-direct-{i}-{tag}",
                    f"direct {tag} #sim:words=12",
                    model=PLAIN_MODEL,
                    temperature=WARM_PARAMS["temperature"],
                    top_p=WARM_PARAMS["top_p"],
                    max_output_tokens=WARM_PARAMS["max_tokens"],
                    stop=WARM_PARAMS["stop"],
                )
                direct.append((tag, job))
        for i in range(n_changed):
            await wait_idle(session, base)
            tag = nonce()
            model = OTHER_MODEL if i % 2 == 0 else PLAIN_MODEL
            params = CHANGED_PARAMS[i % len(CHANGED_PARAMS)]
            ex = await stream_chat(
                session,
                base,
                f"bench-changed-{i}-{tag}",
                f"changed {tag} #sim:words=12",
                model=model,
                **params,
            )
            changed.append((tag, ex))
        for i in range(n_direct_changed):  # the worker's own timings when everything changes
            await wait_idle(session, base)
            tag = nonce()
            model = OTHER_MODEL if i % 2 == 0 else PLAIN_MODEL
            params = CHANGED_PARAMS[(i + 1) % len(CHANGED_PARAMS)]
            job = await direct_job(
                stack.run_dir / "worker.sock",
                f"bench-direct-changed-{i}-{tag}",
                f"direct changed {tag} #sim:words=12",
                model=model,
                temperature=params["temperature"],
                top_p=params["top_p"],
                max_output_tokens=params["max_tokens"],
                stop=params["stop"],
            )
            direct_changed.append((tag, job))
    records = await asyncio.to_thread(stack.sim_requests)
    submitted = log_times(stack.log_dir / "api_server.log", r"submitted (\S+) to the worker")
    started = log_times(stack.log_dir / "browser_worker.log", r"job (\S+): model")

    def series(rows: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for tag, ex in rows:
            rec = _sim_by_tag(records, tag)
            first = ex.first_token_at
            row: dict[str, Any] = {"request_id": ex.request_id, "error": ex.error}
            if rec is None or first is None or rec.get("first_byte_at") is None:
                row["error"] = row["error"] or "no simulator record or no token"
                out.append(row)
                continue
            sim_ttfb = rec["first_byte_at"] - rec["received_at"]
            row.update(
                client_ttft_ms=ms(first - ex.sent_at),
                sim_ttfb_ms=ms(sim_ttfb),
                added_ms=ms(first - ex.sent_at - sim_ttfb),
                to_sim_ms=ms(rec["received_at"] - ex.sent_at),
                relay_back_ms=ms(first - rec["first_byte_at"]),
            )
            if ex.request_id in submitted:
                row["api_in_ms"] = ms(submitted[ex.request_id] - ex.sent_at)
                row["worker_to_sim_ms"] = ms(rec["received_at"] - submitted[ex.request_id])
            if ex.request_id in started:
                row["worker_start_ms"] = ms(started[ex.request_id] - ex.sent_at)
            if isinstance(getattr(ex, "timings", None), dict):
                row["timings"] = ex.timings
            out.append(row)
        return out

    warm_rows, changed_rows, direct_rows = series(warm), series(changed), series(direct)
    direct_changed_rows = series(direct_changed)
    result.raw = {
        "warm": warm_rows,
        "changed": changed_rows,
        "direct": direct_rows,
        "direct_changed": direct_changed_rows,
        "warm_params": WARM_PARAMS,
        "changed_params": CHANGED_PARAMS,
        "models": {"warm": PLAIN_MODEL, "changed": [OTHER_MODEL, PLAIN_MODEL]},
    }

    def pick(rows: list[dict[str, Any]], key: str) -> list[float]:
        return [r[key] for r in rows if r.get(key) is not None]

    warm_added = pick(warm_rows, "added_ms")
    result.add(f"added first token, warm (n={len(warm_added)})", "ms", warm_added, target=150)
    changed_added = pick(changed_rows, "added_ms")
    result.add(f"added first token, model+settings changed (n={len(changed_added)})", "ms", changed_added)
    direct_added = pick(direct_rows, "added_ms")
    result.add(f"baseline: warm, straight to worker.sock (n={len(direct_added)})", "ms", direct_added)
    result.add("  warm: simulator's own TTFB (subtracted)", "ms", pick(warm_rows, "sim_ttfb_ms"))
    result.add("  warm: client -> API submits to worker", "ms", pick(warm_rows, "api_in_ms"))
    result.add("  warm: API submit -> simulator has request", "ms", pick(warm_rows, "worker_to_sim_ms"))
    result.add("  warm: simulator 1st byte -> client token", "ms", pick(warm_rows, "relay_back_ms"))
    for label, rows in (("warm", direct_rows), ("changed", direct_changed_rows)):
        for name, values in _phases(rows).items():
            if label == "changed" and name == "queue":
                continue
            result.add(f"  worker timings, {label}: {name}", "ms", values)
    errors = [r for r in warm_rows + changed_rows + direct_rows + direct_changed_rows if r.get("error")]
    if errors:
        result.notes.append(
            f"{len(errors)} request(s) failed: " + "; ".join(str(r["error"]) for r in errors[:3])
        )
    return result


def _phases(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Split the worker's cumulative ``Done.timings`` (ms since the job started) into phases."""
    phases: dict[str, list[float]] = {
        "queue": [],
        "settings": [],
        "fill": [],
        "submit": [],
        "first event": [],
    }
    for row in rows:
        t = row.get("timings") or {}
        if not {"settings", "fill", "submit", "first_event"} <= t.keys():
            continue
        phases["queue"].append(round(t.get("accepted", 0.0), 3))
        phases["settings"].append(round(t["settings"], 3))
        phases["fill"].append(round(t["fill"] - t["settings"], 3))
        phases["submit"].append(round(t["submit"] - t["fill"], 3))
        phases["first event"].append(round(t["first_event"] - t["submit"], 3))
    return phases


async def run_relay(stack: Any, quick: bool = False) -> BenchResult:
    result = BenchResult("relay")
    runs = 3 if quick else 7
    base = stack.base_url
    await asyncio.to_thread(stack.sim_reset)
    exchanges: list[tuple[str, Any, str | None]] = []
    async with aiohttp.ClientSession() as session, ProxyTap(stack.run_dir / "proxy.sock") as tap:
        await wait_idle(session, base)
        await stream_chat(
            session, base, f"bench-warmup-{nonce()}", "warm up #sim:words=3", model=PLAIN_MODEL, **WARM_PARAMS
        )
        for i in range(runs):
            await wait_idle(session, base)
            tag = nonce()
            seen = len(tap.order)
            prompt = f"relay {tag} #sim:words={2 * RELAY_CHUNKS} #sim:chunks={RELAY_CHUNKS} #sim:delay_ms={RELAY_DELAY_MS}"
            ex = await stream_chat(
                session, base, f"bench-relay-{i}-{tag}", prompt, model=PLAIN_MODEL, **WARM_PARAMS
            )
            flows = tap.order[seen:]
            exchanges.append((tag, ex, flows[-1] if flows else None))
        cpu = await _cpu_per_chunk(stack, session, tap)
    records = await asyncio.to_thread(stack.sim_requests)
    per_chunk: list[float] = []
    first_chunk: list[float] = []
    to_proxy: list[float] = []
    proxy_to_client: list[float] = []
    gap_dev: list[float] = []
    tail: list[float] = []
    tail_proxy: list[float] = []
    tail_rest: list[float] = []
    raw: list[dict[str, Any]] = []
    for tag, ex, flow in exchanges:
        rec = _sim_by_tag(records, tag)
        times = ex.content_times
        if rec is None or not times or rec.get("first_byte_at") is None:
            raw.append({"request_id": ex.request_id, "error": ex.error or "no record or no content"})
            continue
        writes = int(rec["response"]["events"])
        fb, lb = rec["first_byte_at"], rec["last_byte_at"]
        step = (lb - fb) / (writes - 1) if writes > 1 else 0.0
        sends = [fb + k * step for k in range(writes - 1)]
        n = min(len(times), len(sends))
        lat = [ms(times[k] - sends[k]) for k in range(n)]
        per_chunk += lat
        first_chunk.append(ms(times[0] - fb))
        gaps = [ms(b - a - step) for a, b in zip(times, times[1:], strict=False)]
        gap_dev += [abs(g) for g in gaps]
        proxy_times = tap.content_times(flow) if flow else []
        hop1 = [ms(proxy_times[k] - sends[k]) for k in range(min(n, len(proxy_times)))]
        hop2 = [ms(times[k] - proxy_times[k]) for k in range(min(n, len(proxy_times)))]
        to_proxy += hop1
        proxy_to_client += hop2
        if ex.done_at is not None and rec.get("ended_at") is not None:
            tail.append(ms(ex.done_at - rec["ended_at"]))
            proxy_done = [t for t, msg in tap.flows.get(flow, []) if msg.type == "done"] if flow else []
            if proxy_done:
                tail_proxy.append(ms(proxy_done[0] - rec["ended_at"]))
                tail_rest.append(ms(ex.done_at - proxy_done[0]))
        raw.append(
            {
                "request_id": ex.request_id,
                "writes": writes,
                "client_chunks": len(times),
                "proxy_chunks": len(proxy_times),
                "pacing_ms": ms(step),
                "per_chunk_ms": lat,
                "sim_to_proxy_ms": hop1,
                "proxy_to_client_ms": hop2,
                "gap_minus_pacing_ms": gaps,
                "error": ex.error,
            }
        )
        if len(times) != writes - 1:
            result.notes.append(
                f"{ex.request_id}: {len(times)} content chunks at the client for {writes - 1} "
                "text events (chunks merged or split)"
            )
    result.raw = {"runs": raw, "chunks": RELAY_CHUNKS, "delay_ms": RELAY_DELAY_MS}
    result.add(f"per-chunk relay, sim write -> client (n={len(per_chunk)})", "ms", per_chunk, target=2)
    result.add("  of which sim write -> proxy.sock subscriber", "ms", to_proxy)
    result.add("  of which proxy.sock -> worker -> API -> client", "ms", proxy_to_client)
    result.add(f"first chunk relay, exact ends (n={len(first_chunk)})", "ms", first_chunk)
    result.add("|client gap - sim pacing|", "ms", gap_dev)
    result.add("sim response ended -> client [DONE]", "ms", tail)
    result.add("  of which sim end -> proxy's done at proxy.sock", "ms", tail_proxy)
    result.add("  of which proxy's done -> worker finishes -> client [DONE]", "ms", tail_rest)
    if cpu:
        for group, per in cpu["ms_per_chunk"].items():
            result.add(f"  CPU per relayed chunk: {group}", "ms", [per])
    result.raw["cpu_while_streaming"] = cpu
    if per_chunk:
        result.notes.append(
            f"relay p95 {sorted(per_chunk)[int(0.95 * (len(per_chunk) - 1))]:.2f} ms; "
            f"mean {statistics.fmean(per_chunk):.2f} ms"
        )
    return result


CPU_CHUNKS = 100
CPU_DELAY_MS = 20


async def _cpu_per_chunk(stack: Any, session: aiohttp.ClientSession, tap: ProxyTap) -> dict[str, Any]:
    """CPU time each process group uses while an answer streams (first to last chunk), per chunk.

    One untimed answer of ``CPU_CHUNKS`` events ``CPU_DELAY_MS`` apart; the CPU counters are read when
    the proxy subscriber sees the first text event and again when the client has ``[DONE]``. It
    includes everything those processes did meanwhile (Chromium renders the same answer; the worker
    also watches the page), which is the point: it is what competes for the two cores.
    """
    groups = await asyncio.to_thread(process_groups, stack)
    await wait_idle(session, stack.base_url)
    tag = nonce()
    seen = len(tap.order)
    prompt = f"cpu {tag} #sim:words={2 * CPU_CHUNKS} #sim:chunks={CPU_CHUNKS} #sim:delay_ms={CPU_DELAY_MS}"
    task = asyncio.create_task(
        stream_chat(session, stack.base_url, f"bench-cpu-{tag}", prompt, model=PLAIN_MODEL, **WARM_PARAMS)
    )
    before: dict[str, float] | None = None
    t0 = 0.0
    while not task.done():
        flows = tap.order[seen:]
        if flows and tap.content_times(flows[-1]):
            before, t0 = cpu_by_group(groups), time.monotonic()
            break
        await asyncio.sleep(0.002)  # watching for the first event of the answer
    ex = await task
    after, wall = cpu_by_group(groups), time.monotonic() - t0
    chunks = len(ex.content_times)
    if before is None or not chunks or ex.error:
        return {}
    used = {g: after[g] - before[g] for g in groups}
    return {
        "chunks": chunks,
        "wall_s": round(wall, 3),
        "cpu_s": {g: round(v, 3) for g, v in used.items()},
        "ms_per_chunk": {g: round(v * 1000 / chunks, 3) for g, v in used.items()},
        "share_of_one_core": {g: round(v / wall, 3) for g, v in used.items()},
    }
