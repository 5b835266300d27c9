"""``python -m bench [--quick] [--only NAME,...]``: the benchmarks against the demo stack, one table.

The decoder benchmark is pure and runs first, on a quiet machine. The others share one demo stack
(``aistudio_sim.stack.Stack``: the real ``supervisord.conf`` in a temp copy, the AI Studio simulator,
free ports), started once. Memory is read idle right after start and again after the other
benchmarks. Prints one table (benchmark, metric, median, min, max, target, verdict) and writes every
raw sample with the machine's description to ``bench/results.json``.

Targets are goals: a missed target is reported, the exit status stays 0. The status is 1 when a
benchmark crashed or the stack did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import decoder
from bench.common import BenchResult, Metric

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
ALL = (
    "decoder",
    "chromium_memory",
    "first_token",
    "dialects",
    "relay",
    "tiers",
    "prompt_size",
    "throughput",
    "memory",
    "pool",
    "observability",
)
#: On the one shared demo stack; ``pool`` starts a stack per layout of its own, ``observability`` runs
#: the API server alone.
STACK_BENCHES = ALL[1:-2]


# --------------------------------------------------------------------------- machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def loadavg() -> list[float]:
    return [float(x) for x in _read("/proc/loadavg").split()[:3]] or [0.0, 0.0, 0.0]


def cpu_pressure() -> float | None:
    """``some avg10`` of ``/proc/pressure/cpu``: % of the last 10 s in which a runnable task waited for a CPU."""
    for line in _read("/proc/pressure/cpu").splitlines():
        if line.startswith("some "):
            return float(dict(f.split("=") for f in line.split()[1:])["avg10"])
    return None


def machine_info() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "chromium": _chromium_version(),
    }
    for package in ("playwright", "mitmproxy", "aiohttp"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def _chromium_version() -> str | None:
    try:
        from shared.settings import Settings

        exe = str(Settings().browser_executable)
    except Exception:  # noqa: BLE001 - a bad .env must not stop the machine description
        exe = "/usr/bin/chromium"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------- the decoder, as a result


def run_decoder(quick: bool) -> BenchResult:
    result = BenchResult("decoder")
    rows = decoder.run(quick=quick)
    result.raw = {"rows": rows}

    def spread(row: dict[str, Any]) -> list[float]:
        # bench.decoder keeps median/min/max, not every sample
        return [float(row["min_mb_s"]), float(row["median_mb_s"]), float(row["max_mb_s"])]

    incremental = [r for r in rows if r["decoder"] == "incremental"]
    naive = [r for r in rows if r["decoder"] == "naive"]
    for row in incremental:
        result.add(
            f"incremental, {row['size_bytes'] / 1e6:.0f} MB body (x{row['repeats']})", "MB/s", spread(row)
        )
    for row in naive:
        result.add(
            f"baseline: naive, {row['size_bytes'] / 1e6:.2g} MB body (x{row['repeats']})", "MB/s", spread(row)
        )
    if len(incremental) > 1:
        big = incremental[-1]
        result.add("incremental: 10 MB / 1 MB time (wall)", "x", [float(big["time_ratio"])])
        result.add("incremental: 10 MB / 1 MB time (CPU)", "x", [float(big["cpu_ratio"])])
    if len(naive) > 1:
        big = naive[-1]
        result.add(
            f"baseline: naive {big['size_bytes'] / naive[0]['size_bytes']:.0f}x body, time ratio (CPU)",
            "x",
            [float(big["cpu_ratio"])],
        )
    if incremental and naive:
        same = [r for r in naive if r["size_bytes"] == incremental[0]["size_bytes"]] or naive[:1]
        result.add(
            f"speed-up over naive at {same[0]['size_bytes'] / 1e6:.2g} MB",
            "x",
            [float(incremental[0]["median_mb_s"]) / float(same[0]["median_mb_s"])],
        )
    result.notes.append(
        "MB/s of the decompressed body fed as 4 KiB gzip pieces; min/median/max as bench.decoder reports them"
    )
    return result


# --------------------------------------------------------------------------- table


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms" if abs(value) < 10 else f"{value:.0f} ms"
    if unit == "fraction":
        return f"{value:.0%}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("MB/s", "req/s"):
        return f"{value:.2f} {unit}" if value < 10 else f"{value:.1f} {unit}"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:g} {unit}"


def _target(metric: Metric) -> str:
    if metric.target is None:
        return ""
    sign = "≤" if metric.op == "<=" else "≥"
    return f"{sign} {_fmt(metric.target, metric.unit)}"


def format_table(results: list[BenchResult]) -> str:
    head = ("benchmark", "metric", "median", "min", "max", "target", "verdict")
    lines: list[tuple[str, ...]] = []
    for res in results:
        if res.error:
            lines.append((res.name, f"CRASHED: {res.error}"[:90], "", "", "", "", "crash"))
        for m in res.metrics:
            lines.append(
                (
                    res.name,
                    m.name,
                    _fmt(m.median, m.unit),
                    _fmt(min(m.samples), m.unit) if m.samples else "-",
                    _fmt(max(m.samples), m.unit) if m.samples else "-",
                    _target(m),
                    m.verdict,
                )
            )
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    right = {2, 3, 4}

    def render(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return " | ".join(cells).rstrip()

    out = [render(head), "-+-".join("-" * w for w in widths)]
    previous = None
    for row in lines:
        if previous is not None and row[0] != previous:
            out.append("")
        out.append(render(row))
        previous = row[0]
    notes = [f"  {res.name}: {note}" for res in results for note in res.notes]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


# --------------------------------------------------------------------------- running


def _timed(name: str, fn: Callable[[], BenchResult]) -> BenchResult:
    load, pressure = loadavg(), cpu_pressure()
    print(
        f"[bench] {name} ... (load {' '.join(map(str, load))}, cpu pressure {pressure}%)",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.monotonic()
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - a crashed benchmark is reported and the others still run
        traceback.print_exc()
        result = BenchResult(name, error=f"{type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - t0
    result.raw["loadavg_before"] = load
    result.raw["loadavg_after"] = loadavg()
    result.raw["cpu_pressure_avg10_before"] = pressure
    result.raw["cpu_pressure_avg10_after"] = cpu_pressure()
    print(f"[bench] {name} done in {result.seconds:.1f} s", file=sys.stderr, flush=True)
    return result


def run_stack_benches(selected: list[str], quick: bool, problems: list[str]) -> list[BenchResult]:
    from aistudio_sim.stack import Stack, StackError
    from bench import chromium_memory, dialects, latency, memory, prompt_size, throughput, tiers
    from bench.common import wait_idle

    results: list[BenchResult] = []
    print("[bench] starting the demo stack ...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    stack = Stack(prefix="aisp-bench-")
    try:
        stack.start()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"the demo stack did not start: {exc}")
        return [BenchResult(name, error="the demo stack did not start") for name in selected]
    print(
        f"[bench] stack ready in {time.monotonic() - t0:.1f} s ({stack.base_url})",
        file=sys.stderr,
        flush=True,
    )
    try:

        async def idle_readings() -> list[dict[str, float]]:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                await wait_idle(session, stack.base_url, timeout=60)
            await asyncio.sleep(2)  # let the page settle after start-up before reading memory
            return await asyncio.to_thread(memory.readings, stack)

        async def worker_ready() -> None:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                await wait_idle(session, stack.base_url, timeout=60)

        idle = asyncio.run(idle_readings()) if "memory" in selected else []
        benches: dict[str, Callable[[], Any]] = {
            "chromium_memory": lambda: chromium_memory.run(stack, quick),
            "first_token": lambda: latency.run_first_token(stack, quick),
            "dialects": lambda: dialects.run(stack, quick),
            "relay": lambda: latency.run_relay(stack, quick),
            "tiers": lambda: tiers.run(stack, quick),
            "prompt_size": lambda: prompt_size.run(stack, quick),
            "throughput": lambda: throughput.run(stack, quick),
        }
        ran: list[str] = []
        steps: list[tuple[str, dict[str, float]]] = []
        for name in STACK_BENCHES:
            if name in selected and name in benches:
                results.append(_timed(name, lambda fn=benches[name]: asyncio.run(fn())))
                ran.append(name)
                if "memory" in selected:
                    asyncio.run(worker_ready())  # the last job's clean-up runs after its answer
                    steps.append((name, memory.snapshot(stack)))
        if "memory" in selected:
            results.append(_timed("memory", lambda: asyncio.run(memory.run(stack, idle, ran, quick, steps))))
    finally:
        print("[bench] stopping the demo stack ...", file=sys.stderr, flush=True)
        try:
            stack.stop(check=True)
        except StackError as exc:
            problems.append(f"unclean stack shutdown: {str(exc)[:2000]}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions (a smoke run, not for numbers)"
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {','.join(ALL)}")
    parser.add_argument("--json", type=Path, default=RESULTS_PATH, help="where to write the raw results")
    args = parser.parse_args(argv)
    selected = [n.strip() for n in args.only.split(",") if n.strip()] or list(ALL)
    unknown = sorted(set(selected) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ALL)}")

    started = datetime.now(UTC)
    t0 = time.monotonic()
    machine = machine_info()
    load_start, pressure_start = loadavg(), cpu_pressure()
    problems: list[str] = []
    results: list[BenchResult] = []
    if "decoder" in selected:
        results.append(_timed("decoder", lambda: run_decoder(args.quick)))
    stack_selected = [n for n in selected if n in STACK_BENCHES]
    if stack_selected:
        results += run_stack_benches(stack_selected, args.quick, problems)
    if "pool" in selected:
        from bench import pool

        results.append(_timed("pool", lambda: pool.run(args.quick)))
    if "observability" in selected:
        from bench import observability

        results.append(_timed("observability", lambda: observability.run(args.quick)))

    print(format_table(results))
    for problem in problems:
        print(f"\nWARNING: {problem}")
    document = {
        "timestamp": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "quick": args.quick,
        "selected": selected,
        "machine": machine,
        "loadavg": {"start": load_start, "end": loadavg()},
        "cpu_pressure_avg10": {"start": pressure_start, "end": cpu_pressure()},
        "problems": problems,
        "benchmarks": [r.to_json() for r in results],
    }
    args.json.write_text(json.dumps(document, indent=1, ensure_ascii=False, default=str) + "\n")
    print(
        f"\nraw samples: {args.json}  ({document['duration_s']:.0f} s, load {load_start} -> {loadavg()}, "
        f"cpu pressure {pressure_start}% -> {cpu_pressure()}%, {machine['cores']} cores, {machine['cpu']})"
    )
    crashed = any(r.error for r in results) or any("did not start" in p for p in problems)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
