"""Smoke test of the benchmark package: it imports, and the pure decoder benchmark runs in quick mode.

The stack benchmarks need a browser and minutes, so they are not run here; targets are never asserted.
"""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.timeout(120)
def test_bench_modules_import_and_quick_decoder_bench_fills_the_table() -> None:
    """Every bench module imports; the quick decoder run yields rows that the table renders."""
    for name in (
        "bench.common",
        "bench.latency",
        "bench.prompt_size",
        "bench.throughput",
        "bench.memory",
        "bench.chromium_memory",
        "bench.tiers",
        "bench.dialects",
        "bench.observability",
    ):
        importlib.import_module(name)
    main = importlib.import_module("bench.__main__")
    from bench.prompt_size import make_prompt

    prompt = make_prompt(10_000, "tag123")
    assert len(prompt.encode()) == 10_000 and prompt.rstrip().endswith("tag123")

    result = main.run_decoder(quick=True)
    names = [m.name for m in result.metrics]
    assert any(n.startswith("incremental, 1 MB") for n in names)
    assert any(n.startswith("baseline: naive") for n in names)
    assert all(m.samples and all(v > 0 for v in m.samples) for m in result.metrics)
    table = main.format_table([result])
    assert [c.strip() for c in table.splitlines()[0].split(" | ")] == [
        "benchmark",
        "metric",
        "median",
        "min",
        "max",
        "target",
        "verdict",
    ]
    assert "decoder" in table


@pytest.mark.timeout(120)
def test_the_observability_bench_runs_alone_and_fills_its_rows() -> None:
    """It needs no stack (the API server against the fake worker), so it runs here in quick mode."""
    from bench import observability

    result = observability.run(quick=True)
    assert [m.name.split(" (")[0] for m in result.metrics] == [
        "request, recording on",
        "request, recording off",
        "added by ledger + metrics + timeline",
    ]
    assert result.raw["ledger_rows_written"] > 0
