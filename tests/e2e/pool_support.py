"""Helpers of the pool's real-stack tests (``test_pool_*.py``): reading the pool from ``/health``, holding
answers in the simulator, giving an account its login back, and finding a page's renderer process."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

from aistudio_sim.processes import cmdline, descendants
from aistudio_sim.stack import Stack


def email(account: str) -> str:
    """The simulator's email of a demo account (``demo2`` -> ``demo2@example.com``)."""
    return f"{account}@example.com"


def worker(stack: Stack) -> dict[str, Any]:
    """The worker's part of ``/health`` (its accounts and slots)."""
    body = stack.get("/health")[1]
    component: dict[str, Any] = body["components"]["worker"]
    return component


def account_states(stack: Stack) -> dict[str, str]:
    return {a["name"]: a["state"] for a in worker(stack)["accounts"]}


async def wait_until(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """Poll ``check`` (a look at an outside process: /health, the simulator's records) until it gives a true
    value; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        await asyncio.sleep(0.2)


async def wait_accounts(stack: Stack, wanted: dict[str, str], timeout: float = 90) -> None:
    """Until the named accounts show the given states in ``/health``."""

    def check() -> bool:
        states = account_states(stack)
        return all(states.get(name) == state for name, state in wanted.items())

    await wait_until(check, f"accounts {wanted} (now {account_states(stack)})", timeout)


def held(stack: Stack) -> dict[str, str]:
    """Hold name -> account of every answer the simulator holds (or held)."""
    return {r["held"]: r["account"] for r in stack.sim_requests() if r.get("held")}


async def wait_held(stack: Stack, names: set[str], timeout: float = 90) -> dict[str, str]:
    """Until every named answer is held in the simulator (so it is generating); hold name -> account."""
    await wait_until(lambda: names <= set(held(stack)), f"answers {names} held", timeout)
    return held(stack)


def release(stack: Stack, *names: str) -> None:
    for name in names:
        stack.sim_inspect("release", method="POST", json={"hold": name})


def attempts(stack: Stack, marker: str) -> list[tuple[str, int | None]]:
    """(account, HTTP status) of every GenerateContent whose prompt holds ``marker``, in order."""
    return [
        (r["account"].split("@")[0], r["status"])
        for r in stack.sim_requests()
        if marker in (r.get("prompt") or "")
    ]


def restore_login(stack: Stack, account: str) -> None:
    """A new signed-in session of ``account`` in its login file (as ``make login`` would write): its pages
    start again by themselves."""
    state = stack.sim_inspect("sessions", method="POST", json={"email": email(account)})
    path = stack.auth_dir / "active" / f"{account}.json"
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh)
    os.replace(tmp, path)


def renderers(stack: Stack) -> set[int]:
    """The Chromium renderer processes under the worker (one per started page: every page has its own
    browser context, and contexts never share a renderer)."""
    pid = stack.pid("browser_worker")
    return {p for p in descendants(pid) if "--type=renderer" in " ".join(cmdline(p))} if pid else set()
