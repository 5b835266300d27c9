"""Long-lived tasks survive their own bugs."""

from __future__ import annotations

import asyncio

import pytest

from api_server import lifecycle


async def test_supervised_task_restarts_after_an_unexpected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crashing run() is logged and started again."""
    monkeypatch.setattr(lifecycle, "RESTART_DELAY_S", 0)
    calls = 0
    again = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug")
        again.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(lifecycle.supervise("flaky", flaky))
    await asyncio.wait_for(again.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 2
