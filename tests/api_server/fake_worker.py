"""A scriptable stand-in for the browser worker, speaking the real protocol on ``worker.sock``.

Usage::

    fake = FakeWorker(settings.worker_socket)
    await fake.start()
    fake.script = [reasoning("hmm"), content("Hello"), usage(10, 2), finish("stop")]
    ...                                     # requests run the script; ``done`` is appended
    await fake.wait_submitted(1)           # hooks instead of sleeps
    await fake.wait_cancelled(req_id)
    await fake.set_state("login_required", "run make login")   # pushed to clients at once
    await fake.stop()

Steps: ``reasoning``, ``content``, ``tool_call``, ``grounding``, ``usage``, ``finish``, ``error`` (stream
events), ``Wait(event)`` (block until the test sets an ``asyncio.Event``),
``Sleep(seconds)``, ``HANG`` (block until ``job_cancel``), ``DISCONNECT`` (drop the
connection). A cancelled job answers ``error(kind="cancelled")`` then ``done``.
Per-request scripts: ``fake.script_fn = lambda submit: [...]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import channel, protocol

MODELS = [
    protocol.ModelInfo(
        id="gemini-2.5-pro",
        display_name="Gemini 2.5 Pro",
        description="Strong reasoning",
        input_token_limit=1048576,
        output_token_limit=65536,
        thinking="budget",
    ),
    protocol.ModelInfo(
        id="gemini-2.5-flash",
        display_name="Gemini 2.5 Flash",
        description="Fast",
        input_token_limit=1048576,
        output_token_limit=65536,
        thinking="toggle",
    ),
]


@dataclass(frozen=True)
class Event:
    """One stream event; ``make(id)`` stamps the request id and time."""

    cls: type[protocol.Message]
    fields: dict[str, Any]

    def make(self, req_id: str) -> protocol.Message:
        return self.cls(id=req_id, ts=time.time(), **self.fields)


@dataclass(frozen=True)
class Wait:
    event: asyncio.Event


@dataclass(frozen=True)
class Sleep:
    seconds: float


class _Hang:
    pass


class _Disconnect:
    pass


HANG = _Hang()
DISCONNECT = _Disconnect()
Step = Event | Wait | Sleep | _Hang | _Disconnect


def reasoning(text: str) -> Event:
    return Event(protocol.Reasoning, {"text": text})


def content(text: str) -> Event:
    return Event(protocol.Content, {"text": text})


def tool_call(name: str, arguments: dict[str, Any], call_id: str | None = None) -> Event:
    return Event(protocol.ToolCall, {"name": name, "arguments": arguments, "call_id": call_id})


def grounding(sources: list[dict[str, Any]], queries: list[str] | None = None) -> Event:
    return Event(protocol.Grounding, {"sources": sources, "queries": queries or []})


def usage(
    prompt: int, completion: int, reasoning_tokens: int | None = None, *, estimated: bool = False
) -> Event:
    return Event(
        protocol.Usage,
        {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "reasoning_tokens": reasoning_tokens,
            "total_tokens": prompt + completion + (reasoning_tokens or 0),
            "estimated": estimated,
        },
    )


def finish(reason: str = "stop") -> Event:
    return Event(protocol.Finish, {"reason": reason})


def error(kind: str, message: str, status: int | None = None, retry_after: float | None = None) -> Event:
    return Event(
        protocol.Error, {"kind": kind, "message": message, "status": status, "retry_after": retry_after}
    )


DEFAULT_SCRIPT: list[Step] = [content("Hello from the fake worker."), finish("stop")]


class FakeWorker:
    def __init__(
        self, path: Path, *, state: str = "ready", models: list[protocol.ModelInfo] | None = None
    ) -> None:
        self.path = path
        self.state = state
        self.message = ""
        self.models = list(MODELS if models is None else models)
        self.script: list[Step] = list(DEFAULT_SCRIPT)
        self.script_fn: Callable[[protocol.JobSubmit], list[Step]] | None = None
        self.submitted: list[protocol.JobSubmit] = []
        self.cancelled: list[str] = []
        self.status_requests = 0
        #: Jobs it runs at once (its slots), as its status says.
        self.capacity = 1
        #: Its accounts, as its status says; ``account_action`` messages change them.
        self.accounts = [protocol.AccountStatus(name="demo", state="ready", pages=1)]
        self.account_actions: list[protocol.AccountAction] = []
        #: Its pages, as its status says (empty: not said); jobs run on ``s1``.
        self.slots: list[protocol.SlotStatus] = []
        #: The stage timings its ``done`` events carry.
        self.timings: dict[str, float] = {}
        #: False: a ``job_cancel`` is recorded but the job goes on (a worker that never confirms the stop).
        self.honour_cancel = True
        self._server: asyncio.Server | None = None
        self._conns: set[channel.Connection] = set()
        self._cancel_events: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()

    # ---- lifecycle

    async def start(self) -> FakeWorker:
        self._server = await channel.serve(self.path, self._handle, process="fake_worker", version="test")
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection (the API sees the worker go away)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.drop_connections()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def drop_connections(self) -> None:
        for conn in list(self._conns):
            await conn.close()

    async def __aenter__(self) -> FakeWorker:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- hooks for tests

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[FakeWorker], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

    async def wait_submitted(self, count: int = 1, timeout: float = 10.0) -> protocol.JobSubmit:
        await self.wait_for(lambda f: len(f.submitted) >= count, timeout)
        return self.submitted[count - 1]

    async def wait_cancelled(self, req_id: str, timeout: float = 10.0) -> None:
        await self.wait_for(lambda f: req_id in f.cancelled, timeout)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await self.wait_for(lambda f: bool(f._conns) and f.status_requests > 0, timeout)

    async def set_state(self, state: str, message: str = "") -> None:
        """Change the state and push the new status to every client, as the real worker does."""
        self.state, self.message = state, message
        await self._push_status()

    async def set_capacity(self, capacity: int) -> None:
        """Say it has ``capacity`` slots (pushed to every client)."""
        self.capacity = capacity
        await self._push_status()

    async def _push_status(self) -> None:
        for conn in list(self._conns):
            with contextlib.suppress(ConnectionError):
                await conn.send(self.status())

    # ---- protocol

    def status(self) -> protocol.WorkerStatus:
        return protocol.WorkerStatus(
            state=self.state,  # type: ignore[arg-type]
            message=self.message,
            model=self.models[0].id if self.models else None,
            models=self.models,
            capture="stream",
            capacity=self.capacity,
            accounts=self.accounts,
            slots=self.slots,
        )

    async def _handle(self, conn: channel.Connection) -> None:
        self._conns.add(conn)
        try:
            async for msg in conn:
                if isinstance(msg, protocol.StatusRequest):
                    self.status_requests += 1
                    await conn.send(self.status())
                elif isinstance(msg, protocol.AccountAction):
                    self.account_actions.append(msg)
                    state = "disabled" if msg.action == "disable" else "ready"
                    self.accounts = [
                        a.model_copy(update={"state": state}) if a.name == msg.account else a
                        for a in self.accounts
                    ]
                    await self._push_status()
                elif isinstance(msg, protocol.JobSubmit):
                    self.submitted.append(msg)
                    self._cancel_events[msg.id] = asyncio.Event()
                    task = asyncio.create_task(self._run(conn, msg))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif isinstance(msg, protocol.JobCancel):
                    self.cancelled.append(msg.id)
                    if self.honour_cancel and msg.id in self._cancel_events:
                        self._cancel_events[msg.id].set()
                await self._notify()
        finally:
            self._conns.discard(conn)
            await self._notify()

    async def _run(self, conn: channel.Connection, submit: protocol.JobSubmit) -> None:
        req_id = submit.id
        cancel = self._cancel_events[req_id]
        steps = self.script_fn(submit) if self.script_fn else list(self.script)
        try:
            await conn.send(protocol.JobAccepted(id=req_id, ts=time.time(), slot="s1"))
            for step in steps:
                if cancel.is_set():
                    break
                if isinstance(step, Event):
                    await conn.send(step.make(req_id))
                    if step.cls is protocol.Error:
                        break
                elif isinstance(step, Wait):
                    await _first(step.event.wait(), cancel.wait())
                elif isinstance(step, Sleep):
                    await _first(asyncio.sleep(step.seconds), cancel.wait())
                elif step is HANG:
                    await cancel.wait()
                elif step is DISCONNECT:
                    await conn.close()
                    return
            if cancel.is_set():
                await conn.send(
                    protocol.Error(
                        id=req_id, ts=time.time(), kind="cancelled", message="stopped by job_cancel"
                    )
                )
            await conn.send(protocol.Done(id=req_id, ts=time.time(), timings=self.timings))
        except ConnectionError:
            pass


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
