"""The queue against the fake worker on the real socket protocol: order, cancel, disconnects, outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from api_server import queue as queue_module
from api_server.app_keys import QUEUE, WORKER
from api_server.lifecycle import drain
from api_server.queue import Abort, RequestQueue, Ticket
from shared import protocol
from shared.errors import Cancelled, QueueFull, WorkerUnavailable
from shared.settings import Settings
from tests.api_server.fake_worker import DISCONNECT, HANG, FakeWorker, Sleep, Wait, content, error, finish

if TYPE_CHECKING:
    from api_server.worker_client import WorkerClient

BODY: dict[str, Any] = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}


def queue_of(client: TestClient) -> RequestQueue:
    return client.app[QUEUE]  # type: ignore[index]


def post(client: TestClient, label: str | None = None, **extra: Any) -> asyncio.Task[aiohttp.ClientResponse]:
    """POST a chat request; ``label`` is sent as the client's x-request-id and as the prompt."""
    headers = {"x-request-id": label} if label else {}
    body = {**BODY, "messages": [{"role": "user", "content": label}]} if label else BODY
    return asyncio.ensure_future(client.post("/v1/chat/completions", json={**body, **extra}, headers=headers))


def label(submit: Any) -> str:
    """The label of a job the fake worker got (its prompt)."""
    return str(submit.job.messages[-1]["content"])


def sid(client: TestClient, label: str) -> str:
    """The server's id of the queued or running request the client labelled ``label``."""
    return next(t.id for t in queue_of(client).active() if t.client_request_id == label)


async def queued(client: TestClient, label: str) -> None:
    await queue_of(client).wait_for(lambda q: any(t.client_request_id == label for t in q.active()))


@pytest.fixture
async def own_session(ready: TestClient) -> AsyncIterator[aiohttp.ClientSession]:
    """A separate client session whose connection a test can drop."""
    session = aiohttp.ClientSession(base_url=str(ready.make_url("/")))
    yield session
    await session.close()


async def test_fifo_order_under_50_concurrent_clients(ready: TestClient, fake: FakeWorker) -> None:
    """Jobs reach the worker in the order they were submitted (not the queue's own listing), one at a time."""
    gate = asyncio.Event()
    fake.script_fn = lambda s: (
        [Wait(gate), content("x"), finish()] if label(s) == "first" else [content(label(s))]
    )
    first = post(ready, "first")
    await fake.wait_submitted(1)
    submitted = ["first"]
    tasks = []
    for i in range(50):  # each waits in the queue before the next is sent: the submission order is known
        tasks.append(post(ready, f"r{i:02d}"))
        await queued(ready, f"r{i:02d}")
        submitted.append(f"r{i:02d}")
    assert [row["client_request_id"] for row in queue_of(ready).snapshot()] == submitted
    assert [row["position"] for row in queue_of(ready).snapshot()] == list(range(51))
    gate.set()
    responses = await asyncio.gather(first, *tasks)
    assert all(r.status == 200 for r in responses)
    assert [label(s) for s in fake.submitted] == submitted
    for r in responses[1:]:
        body = await r.json()
        assert body["choices"][0]["message"]["content"] == r.headers["x-client-request-id"]


async def test_queue_lists_queued_and_running_requests(ready: TestClient, fake: FakeWorker) -> None:
    """GET /v1/queue shows id, position, model, stream, age and state."""
    fake.script = [HANG]
    a = post(ready, "qa")
    await fake.wait_submitted(1)
    b = post(ready, "qb", stream=True)
    await queued(ready, "qb")
    rows = (await (await ready.get("/v1/queue")).json())["data"]
    assert [(r["id"], r["client_request_id"], r["position"], r["state"], r["stream"]) for r in rows] == [
        (sid(ready, "qa"), "qa", 0, "running", False),
        (sid(ready, "qb"), "qb", 1, "queued", True),
    ]
    assert rows[0]["model"] == "gemini-2.5-pro" and rows[0]["age_s"] >= 0
    for rid in (sid(ready, "qb"), sid(ready, "qa")):
        await ready.post(f"/v1/cancel/{rid}")
    await asyncio.gather(a, b)


async def test_cancel_queued_request_never_reaches_the_worker(ready: TestClient, fake: FakeWorker) -> None:
    """Cancelling a queued request answers it 499 and it is never submitted."""
    gate = asyncio.Event()
    fake.script = [Wait(gate), content("ok"), finish()]
    a = post(ready, "ca")
    await fake.wait_submitted(1)
    b = post(ready, "cb")
    await queued(ready, "cb")
    resp = await ready.post(f"/v1/cancel/{sid(ready, 'cb')}")
    assert resp.status == 200 and (await resp.json())["state"] == "queued"
    cancelled = await b
    assert cancelled.status == 499 and (await cancelled.json())["error"]["code"] == "request_cancelled"
    gate.set()
    assert (await a).status == 200
    assert [label(s) for s in fake.submitted] == ["ca"]


async def test_cancel_running_request_sends_job_cancel(ready: TestClient, fake: FakeWorker) -> None:
    """Cancelling the running request sends job_cancel to the worker, then the next job runs."""
    fake.script_fn = lambda s: [HANG] if label(s) == "ra" else [content("next"), finish()]
    a = post(ready, "ra")
    await fake.wait_submitted(1)
    b = post(ready, "rb")
    await queued(ready, "rb")
    running = sid(ready, "ra")
    assert (await ready.post(f"/v1/cancel/{running}")).status == 200
    await fake.wait_cancelled(running)
    assert (await a).status == 499
    assert (await b).status == 200
    assert (await ready.post(f"/v1/cancel/{running}")).status == 404  # it is over: nothing left to cancel


async def test_cancel_unknown_request_is_404(ready: TestClient) -> None:
    """An unknown id is a 404 in the OpenAI shape."""
    resp = await ready.post("/v1/cancel/nope")
    assert resp.status == 404 and (await resp.json())["error"]["param"] == "req_id"


async def test_disconnected_queued_client_is_removed(
    ready: TestClient, fake: FakeWorker, own_session: aiohttp.ClientSession
) -> None:
    """A client that goes away while queued leaves the queue and is never submitted."""
    gate = asyncio.Event()
    fake.script = [Wait(gate), content("ok"), finish()]
    a = post(ready, "da")
    await fake.wait_submitted(1)
    b = asyncio.ensure_future(
        own_session.post("/v1/chat/completions", json=BODY, headers={"x-request-id": "db"})
    )
    await queued(ready, "db")
    gone = sid(ready, "db")
    b.cancel()
    await own_session.close()
    await queue_of(ready).wait_for(lambda q: q.get(gone) is None)
    gate.set()
    assert (await a).status == 200
    assert [label(s) for s in fake.submitted] == ["da"]


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnected_running_client_stops_the_generation(
    ready: TestClient, fake: FakeWorker, own_session: aiohttp.ClientSession, stream: bool
) -> None:
    """A client that goes away while its job runs gets job_cancel sent to the worker."""
    fake.script = [content("partial"), HANG]
    b = asyncio.ensure_future(
        own_session.post(
            "/v1/chat/completions", json={**BODY, "stream": stream}, headers={"x-request-id": "gone"}
        )
    )
    await fake.wait_submitted(1)
    if stream:
        resp = await b
        await resp.content.readuntil(b"partial")
        resp.close()
    else:
        b.cancel()
    await own_session.close()
    await fake.wait_cancelled(fake.submitted[0].id)
    await queue_of(ready).wait_for(lambda q: len(q) == 0)


@pytest.mark.parametrize("settings_overrides", [{"queue_limit": 2}])
async def test_full_queue_answers_429_with_retry_after(ready: TestClient, fake: FakeWorker) -> None:
    """Beyond queue_limit waiting requests a new one gets 429 queue_full."""
    fake.script = [HANG]
    running = post(ready, "f0")
    await fake.wait_submitted(1)
    waiting = [post(ready, "f1"), post(ready, "f2")]
    await queue_of(ready).wait_for(lambda q: len(q) == 3)
    resp = await ready.post("/v1/chat/completions", json=BODY)
    assert resp.status == 429 and resp.headers["Retry-After"]
    assert (await resp.json())["error"]["code"] == "queue_full"
    for rid in [row["id"] for row in queue_of(ready).snapshot()][::-1]:
        await ready.post(f"/v1/cancel/{rid}")
    await asyncio.gather(running, *waiting)


@pytest.mark.parametrize(
    ("state", "code"), [("down", "worker_unavailable"), ("login_required", "login_required")]
)
async def test_worker_down_or_logged_out_answers_503(
    ready: TestClient, fake: FakeWorker, state: str, code: str
) -> None:
    """A worker reporting down/login_required fails requests at once with 503 and Retry-After."""
    fake.state = state
    await ready.app[WORKER].status()  # type: ignore[index]
    for stream in (False, True):
        resp = await ready.post("/v1/chat/completions", json={**BODY, "stream": stream})
        assert resp.status == 503 and resp.headers["Retry-After"]
        assert (await resp.json())["error"]["code"] == code
    assert not fake.submitted
    models = await ready.get("/v1/models")
    assert models.status == 503 and models.headers["Retry-After"]
    assert state in (await models.json())["error"]["message"]
    health = await ready.get("/health")
    assert health.status == 503
    assert (await health.json())["components"]["worker"]["state"] == state


@pytest.mark.parametrize("settings_overrides", [{"response_completion_timeout_ms": 1000}])
async def test_no_worker_at_all_times_out_queued_requests_with_504(client: TestClient) -> None:
    """With no worker listening a request waits up to the completion timeout, then 504; health says 503."""
    health = await client.get("/health")
    assert health.status == 503
    assert (await health.json())["components"]["worker"]["state"] == "disconnected"
    models = await client.get("/v1/models")
    assert models.status == 503 and models.headers["Retry-After"]
    resp = await client.post("/v1/chat/completions", json=BODY)
    assert resp.status == 504 and (await resp.json())["error"]["type"] == "timeout_error"


async def test_queued_job_waits_for_a_starting_worker(ready: TestClient, fake: FakeWorker) -> None:
    """While the worker says starting, jobs wait; they run once it is ready."""
    await fake.set_state("starting")
    await ready.app[WORKER].status()  # type: ignore[index]
    task = post(ready, "st")
    await queued(ready, "st")
    assert not fake.submitted
    await fake.set_state("ready")
    resp = await task
    assert resp.status == 200 and label(fake.submitted[0]) == "st"


async def test_connection_lost_mid_job_fails_it_and_the_next_job_runs(
    ready: TestClient, fake: FakeWorker
) -> None:
    """A dropped worker connection ends the running job with 503; the next job works after reconnect."""
    fake.script_fn = lambda s: (
        [content("partial"), DISCONNECT] if label(s) == "lost" else [content("ok"), finish()]
    )
    resp = await post(ready, "lost")
    assert resp.status == 503
    err = (await resp.json())["error"]
    assert err["code"] == "worker_connection_lost" and resp.headers["Retry-After"] == "5"
    assert (
        err["message"]
        == "The connection to the browser worker was lost during generation; retry the request."
    )
    again = await ready.post("/v1/chat/completions", json=BODY)
    assert again.status == 200
    assert (await again.json())["choices"][0]["message"]["content"] == "ok"


async def test_queue_waits_while_the_worker_restarts(
    ready: TestClient, fake: FakeWorker, settings: Settings
) -> None:
    """With the worker gone, queued jobs are kept and run on the new worker."""
    await fake.stop()
    await ready.app[WORKER].wait_disconnected()  # type: ignore[index]
    task = post(ready, "later")
    await queued(ready, "later")
    async with FakeWorker(settings.worker_socket) as again:
        resp = await task
        assert resp.status == 200 and label(again.submitted[0]) == "later"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("quota", 429, "insufficient_quota"),
        ("rate_limit", 429, "rate_limit_exceeded"),
        ("upstream", 502, "upstream_error"),
        ("upstream_status", 502, "upstream_status"),
        ("timeout", 504, "upstream_timeout"),
        ("login_required", 503, "login_required"),
        ("model_switch", 422, "model_switch_failed"),
        ("permission", 403, "permission_denied"),
    ],
)
async def test_worker_errors_map_to_http_statuses(
    ready: TestClient, fake: FakeWorker, kind: str, status: int, code: str
) -> None:
    """An error event becomes its typed HTTP error."""
    fake.script = [error(kind, f"{kind} happened", retry_after=60 if status == 429 else None)]
    resp = await ready.post("/v1/chat/completions", json=BODY)
    assert resp.status == status
    body = await resp.json()
    assert body["error"]["code"] == code and kind in body["error"]["message"]
    if status == 429:
        assert resp.headers["Retry-After"] == "60"


async def test_shutdown_ends_running_jobs_with_503_and_refuses_new_ones(
    ready: TestClient, fake: FakeWorker
) -> None:
    """drain() waits the grace period, ends what is left with 503 and refuses new requests."""
    fake.script = [HANG]
    a = post(ready, "sd")
    await fake.wait_submitted(1)
    await drain(ready.app)
    resp = await a
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "shutting_down"
    await fake.wait_cancelled(fake.submitted[0].id)
    new = await ready.post("/v1/chat/completions", json=BODY)
    assert new.status == 503
    assert (await ready.get("/health")).status == 503


@pytest.mark.parametrize("settings_overrides", [{"response_completion_timeout_ms": 1000}])
async def test_waiting_behind_a_long_job_is_not_a_timeout(ready: TestClient, fake: FakeWorker) -> None:
    """A request queued behind a job running longer than the completion timeout still gets its turn."""
    fake.script_fn = lambda s: (
        [Sleep(1.3), content("slow"), finish()] if label(s) == "long" else [content("b")]
    )
    a = post(ready, "long")
    await fake.wait_submitted(1)
    b = post(ready, "behind")
    assert (await a).status == 200
    resp = await b
    assert resp.status == 200 and (await resp.json())["choices"][0]["message"]["content"] == "b"


@pytest.mark.parametrize(
    ("state", "reason", "code", "message", "retry_after"),
    [
        ("login_required", "no saved login", "login_required", "no saved login", "60"),
        (
            "login_required",
            "",
            "login_required",
            "The browser worker needs a Google login: run `make login`.",
            "60",
        ),
        ("down", "page crashed", "worker_unavailable", "The browser worker is down: page crashed.", "30"),
        ("down", "", "worker_unavailable", "The browser worker is down: no reason.", "30"),
    ],
)
async def test_waiting_job_fails_when_the_worker_turns_out_logged_out_or_down(
    ready: TestClient, fake: FakeWorker, state: str, reason: str, code: str, message: str, retry_after: str
) -> None:
    """A job waiting for a starting worker gets 503 once the worker reports login_required (Retry-After 60 s)
    or down (30 s), with the worker's reason; the queue goes on serving once the worker is ready."""
    await fake.set_state("starting")
    await ready.app[WORKER].status()  # type: ignore[index]
    task = post(ready, "lo")
    await queued(ready, "lo")
    await fake.set_state(state, reason)
    resp = await task
    assert resp.status == 503 and resp.headers["Retry-After"] == retry_after
    err = (await resp.json())["error"]
    assert (err["code"], err["message"]) == (code, message)
    assert not fake.submitted
    await fake.set_state("ready")
    assert (await ready.post("/v1/chat/completions", json=BODY)).status == 200


@pytest.mark.parametrize("settings_overrides", [{"response_completion_timeout_ms": 1000}])
async def test_a_long_prompt_gets_the_time_the_worker_gives_it(ready: TestClient, fake: FakeWorker) -> None:
    """The backstop for a running job covers the worker's own limit, which grows with the prompt
    (``shared.deadlines``: 5 s + 1 s per 1000 characters): 30 000 characters may take the worker 35 s,
    more than the 3 x 1 s + 10 s a short prompt gets."""
    fake.script = [Sleep(14), content("late"), finish()]
    body = {**BODY, "messages": [{"role": "user", "content": "word " * 6_000}]}
    resp = await ready.post("/v1/chat/completions", json=body)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == "late"


# ---- the queue's own bookkeeping, without a dispatcher or a worker


def ticket(req_id: str, **fields: Any) -> Ticket:
    job = protocol.Job(model="gemini-2.5-pro", messages=[{"role": "user", "content": req_id}])
    return Ticket(id=req_id, job=job, stream=False, **fields)


def bare_queue(limit: int = 5) -> RequestQueue:
    return RequestQueue(limit, cast("WorkerClient", None))


async def test_enqueue_refuses_beyond_the_limit_and_while_shutting_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """queue_limit counts waiting requests: one more is 429 queue_full (Retry-After 5 s); after shutdown
    began a new request is 503 with Retry-After 5 s."""
    caplog.set_level(logging.INFO, logger="api_server.queue")
    q = bare_queue(limit=1)
    q.enqueue(ticket("a"))
    with pytest.raises(QueueFull) as full:
        q.enqueue(ticket("b"))
    assert (full.value.message, full.value.retry_after) == (
        "The request queue is full (1 waiting); retry later.",
        5,
    )
    q.closed = True
    with pytest.raises(WorkerUnavailable) as closing:
        q.enqueue(ticket("c"))
    assert (closing.value.message, closing.value.retry_after) == ("The server is shutting down.", 5)
    assert [t.id for t in q.active()] == ["a"] and len(q) == 1 and q.get("b") is None
    assert caplog.messages == ["queued a at position 1"]


async def test_cancel_takes_a_queued_request_out_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A cancelled queued request leaves the listing immediately and its handler gets the error; cancelling
    it again (before its handler finished) is harmless; an unknown id is not found."""
    caplog.set_level(logging.INFO, logger="api_server.queue")
    q = bare_queue()
    a, b = ticket("a"), ticket("b")
    q.enqueue(a)
    q.enqueue(b)
    error = Cancelled("cancelled")
    assert q.cancel("a", error) is a
    assert [t.id for t in q.active()] == ["b"] and len(q) == 1
    assert q.cancel("a", error) is a
    assert [
        item.error for item in (a.inbox.get_nowait(), a.inbox.get_nowait()) if isinstance(item, Abort)
    ] == [error, error]
    assert q.cancel("nope", error) is None
    q.finish(a)
    assert a.state == "done" and a.released.is_set() and q.get("a") is None and q.cancel("a", error) is None
    assert "removed a from the queue" in caplog.messages


async def test_snapshot_hides_other_owners_but_keeps_positions() -> None:
    """/v1/queue shows a client key only its own requests; ``position`` still counts every request and
    ``age_s`` is in seconds, to the millisecond."""
    q = bare_queue()
    mine, theirs, mine_too = ticket("m1", owner="k1"), ticket("t", owner="k2"), ticket("m2", owner="k1")
    for t in (mine, theirs, mine_too):
        q.enqueue(t)
    mine_too.created = time.monotonic() - 1.2341111
    rows = q.snapshot(lambda t: t.owner == "k1")
    assert [(r["id"], r["position"], r["state"]) for r in rows] == [("m1", 0, "queued"), ("m2", 2, "queued")]
    age = rows[1]["age_s"]
    assert isinstance(age, float) and age == round(age, 3) and 1.234 <= age < 1.3


async def test_close_runs_the_cleanup_once_even_when_it_fails(caplog: pytest.LogCaptureFixture) -> None:
    """A failing attachment cleanup is logged, never raised, and never run twice."""
    calls: list[str] = []

    def cleanup() -> None:
        calls.append("cleanup")
        raise OSError("busy")

    t = ticket("c", cleanup=cleanup)
    t.close()
    t.close()
    assert calls == ["cleanup"] and t.state == "done" and t.released.is_set()
    assert caplog.messages == ["cleaning up after c failed"]


async def test_events_for_unknown_requests_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """A late worker event for a request that already left goes nowhere (logged at debug level)."""
    caplog.set_level(logging.DEBUG, logger="api_server.queue")
    q = bare_queue()
    a = ticket("a")
    q.enqueue(a)
    q.deliver(protocol.Content(id="gone", ts=0.0, text="late"))
    q.deliver(protocol.Pong(process="browser_worker", pid=1, version="1"))  # no id at all
    q.deliver(protocol.Content(id="a", ts=0.0, text="hi"))
    assert a.inbox.get_nowait() == protocol.Content(id="a", ts=0.0, text="hi") and a.inbox.empty()
    assert caplog.messages == [
        "queued a at position 1",
        "dropping Content for unknown request gone",
        "dropping Pong for unknown request None",
    ]


async def test_a_worker_that_never_confirms_the_stop_holds_the_slot_until_the_drain_timeout(
    ready: TestClient, fake: FakeWorker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After job_cancel the page may still be generating: the next job waits for the worker's confirmation,
    or for CANCEL_DRAIN_S, then runs."""
    monkeypatch.setattr(queue_module, "CANCEL_DRAIN_S", 1.0)
    caplog.set_level(logging.INFO, logger="api_server.queue")
    fake.honour_cancel = False
    fake.script_fn = lambda s: [HANG] if label(s) == "stuck" else [content("next"), finish()]
    a = post(ready, "stuck")
    await fake.wait_submitted(1)
    b = post(ready, "next")
    await queued(ready, "next")
    stuck = sid(ready, "stuck")
    assert (await ready.post(f"/v1/cancel/{stuck}")).status == 200
    assert (await a).status == 499
    await queue_of(ready).wait_for(lambda q: any(t.state == "draining" for t in q.running()))
    assert (await ready.post(f"/v1/cancel/{stuck}")).status == 404  # already being stopped
    assert [label(s) for s in fake.submitted] == ["stuck"]
    async with asyncio.timeout(10):
        assert (await b).status == 200
    assert [label(s) for s in fake.submitted] == ["stuck", "next"] and fake.cancelled == [stuck]
    for line in (
        f"submitted {stuck} to the worker",
        f"stopping {stuck} in the worker (job_cancel)",
        f"no confirmation that {stuck} stopped (TimeoutError); moving on",
    ):
        assert line in caplog.messages


async def test_a_submission_that_hits_a_lost_connection_waits_at_the_head(
    ready: TestClient, fake: FakeWorker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When the worker connection breaks as a job is being submitted, the job never reached the worker: it
    goes back to the head of the queue (ahead of later requests) and is submitted once the worker is back."""
    caplog.set_level(logging.WARNING, logger="api_server.queue")
    worker = ready.app[WORKER]  # type: ignore[index]
    real_send = worker.send
    broken: list[str] = []
    broke = asyncio.Event()

    async def send_breaking_once(msg: protocol.Message) -> None:
        if isinstance(msg, protocol.JobSubmit) and not broken:
            broken.append(msg.id)
            broke.set()
            asyncio.ensure_future(
                fake.drop_connections()
            )  # the socket goes away right after this send failed
            raise ConnectionError("connection reset")
        await real_send(msg)

    monkeypatch.setattr(worker, "send", send_breaking_once)
    first = post(ready, "first")
    await broke.wait()
    second = post(ready, "second")
    async with asyncio.timeout(10):
        responses = await asyncio.gather(first, second)
    assert [r.status for r in responses] == [200, 200]
    assert [label(s) for s in fake.submitted] == ["first", "second"] and fake.submitted[0].id == broken[0]
    assert [r.getMessage() for r in caplog.records if r.name == "api_server.queue"] == [
        f"worker connection lost before submitting {broken[0]}; it waits at the head"
    ]


# --------------------------------------------------------------------------- fairness between keys, capacity


async def test_keys_take_turns_so_one_busy_client_cannot_starve_another() -> None:
    """Waiting requests are served round-robin among the keys that have some, each key's oldest first: a key
    that queued three requests before another key queued one gets one turn, then the other key its turn."""
    q = bare_queue(limit=10)
    for t in (ticket("a1", owner="A"), ticket("a2", owner="A"), ticket("a3", owner="A")):
        q.enqueue(t)
    q.enqueue(ticket("b1", owner="B"))
    q.enqueue(ticket("c1", owner="C"))
    q.enqueue(ticket("b2", owner="B"))
    assert [t.id for t in q.active()] == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert [r["position"] for r in q.snapshot()] == [0, 1, 2, 3, 4, 5]
    q.cancel("b1", Cancelled("x"))  # B's turn passes to its next request
    assert [t.id for t in q.active()] == ["a1", "b2", "c1", "a2", "a3"]


async def test_without_keys_the_queue_stays_first_in_first_out() -> None:
    q = bare_queue()
    for name in ("x", "y", "z"):
        q.enqueue(ticket(name))
    q.enqueue(ticket("k", owner="K"))  # the admin and keyless callers are one owner among keys
    q.enqueue(ticket("w"))
    assert [t.id for t in q.active()] == ["x", "k", "y", "z", "w"]


async def test_queue_limit_per_key_refuses_one_key_beyond_its_share_while_others_still_queue() -> None:
    q = RequestQueue(10, cast("WorkerClient", None), limit_per_key=2)
    q.enqueue(ticket("a1", owner="A"))
    q.enqueue(ticket("a2", owner="A"))
    with pytest.raises(QueueFull) as full:
        q.enqueue(ticket("a3", owner="A"))
    assert "2 waiting for this key" in full.value.message and full.value.retry_after == 5
    q.enqueue(ticket("b1", owner="B"))
    assert [t.id for t in q.active()] == ["a1", "b1", "a2"]


@pytest.mark.parametrize("settings_overrides", [{"admin_key": "admin-secret"}])
async def test_two_keys_take_turns_at_the_worker(ready: TestClient, fake: FakeWorker) -> None:
    """End to end on the socket protocol: key A queues three requests behind a running one, key B one; the
    worker gets A's first, then B's, then A's others."""
    admin = {"Authorization": "Bearer admin-secret"}
    keys = [(await (await ready.post("/api/keys", headers=admin)).json())["key"] for _ in range(2)]
    gate = asyncio.Event()
    fake.script_fn = lambda s: [Wait(gate), content("x"), finish()] if label(s) == "hold" else [content("ok")]

    def post_as(key: str, name: str) -> asyncio.Task[aiohttp.ClientResponse]:
        body = {**BODY, "messages": [{"role": "user", "content": name}]}
        headers = {"Authorization": f"Bearer {key}", "x-request-id": name}
        return asyncio.ensure_future(ready.post("/v1/chat/completions", json=body, headers=headers))

    tasks = [post_as(keys[0], "hold")]
    await fake.wait_submitted(1)
    for key, name in [(keys[0], "a1"), (keys[0], "a2"), (keys[0], "a3"), (keys[1], "b1")]:
        tasks.append(post_as(key, name))
        await queued(ready, name)
    gate.set()
    assert all(r.status == 200 for r in await asyncio.gather(*tasks))
    assert [label(s) for s in fake.submitted] == ["hold", "a1", "b1", "a2", "a3"]


async def test_the_worker_s_capacity_runs_that_many_jobs_at_once(ready: TestClient, fake: FakeWorker) -> None:
    """A worker with two slots (``capacity`` in its status) gets two jobs at once; the third waits for a
    free slot."""
    await fake.set_capacity(2)
    gates = {name: asyncio.Event() for name in ("j1", "j2", "j3")}
    fake.script_fn = lambda s: [Wait(gates[label(s)]), content(label(s)), finish()]
    tasks = [post(ready, "j1"), post(ready, "j2")]
    await fake.wait_submitted(2)
    tasks.append(post(ready, "j3"))
    await queued(ready, "j3")
    assert [r["state"] for r in queue_of(ready).snapshot()] == ["running", "running", "queued"]
    gates["j2"].set()
    await fake.wait_submitted(3)
    gates["j1"].set()
    gates["j3"].set()
    bodies = [await r.json() for r in await asyncio.gather(*tasks)]
    assert [b["choices"][0]["message"]["content"] for b in bodies] == ["j1", "j2", "j3"]


async def test_the_queue_shows_the_page_running_each_request(ready: TestClient, fake: FakeWorker) -> None:
    fake.script = [HANG]
    task = post(ready, "on-a-page")
    await fake.wait_submitted(1)
    await queue_of(ready).wait_for(lambda q: any(t.slot for t in q.active()))
    rows = (await (await ready.get("/v1/queue")).json())["data"]
    assert [(r["client_request_id"], r["state"], r["slot"]) for r in rows] == [("on-a-page", "running", "s1")]
    await ready.post(f"/v1/cancel/{rows[0]['id']}")
    await task


# --------------------------------------------------------------------------- the dispatcher, unit (mutation review)


class StubWorker:
    """The dispatcher's view of the worker: a status, ``wait_usable`` that may block, ``send`` recording."""

    def __init__(self, capacity: int = 1) -> None:
        self.status_msg = protocol.WorkerStatus(state="ready", capacity=capacity)
        self.usable = asyncio.Event()
        self.usable.set()
        self.sent: list[str] = []
        self.submitted = asyncio.Condition()
        #: Set once the dispatcher asked whether the worker is usable.
        self.asked = asyncio.Event()
        #: The next JobSubmit fails as on a connection that broke; then ``reconnected`` must be set.
        self.break_next = False
        self.reconnected = asyncio.Event()

    async def wait_usable(self) -> protocol.WorkerStatus:
        self.asked.set()
        await self.usable.wait()
        return self.status_msg

    async def wait_disconnected(self) -> None:
        await self.reconnected.wait()

    async def send(self, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.JobSubmit) and self.break_next:
            self.break_next = False
            async with self.submitted:
                self.submitted.notify_all()
            raise ConnectionError("connection reset")
        if isinstance(msg, protocol.JobSubmit):
            async with self.submitted:
                self.sent.append(msg.id)
                self.submitted.notify_all()

    async def wait_sent(self, count: int) -> None:
        async with asyncio.timeout(5), self.submitted:
            await self.submitted.wait_for(lambda: len(self.sent) >= count)


@pytest.fixture
async def dispatched() -> AsyncIterator[tuple[RequestQueue, StubWorker]]:
    worker = StubWorker()
    q = RequestQueue(10, cast("WorkerClient", worker))
    task = asyncio.create_task(q.dispatch())
    yield q, worker
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_the_dispatcher_marks_the_start_before_the_worker_can_answer(
    dispatched: tuple[RequestQueue, StubWorker],
) -> None:
    q, worker = dispatched
    t = ticket("t1")
    q.enqueue(t)
    await worker.wait_sent(1)
    assert isinstance(t.inbox.get_nowait(), queue_module.Started) and t.state == "running"


async def test_a_request_that_left_while_the_worker_was_unusable_is_skipped_and_the_next_one_runs(
    dispatched: tuple[RequestQueue, StubWorker],
) -> None:
    q, worker = dispatched
    worker.usable.clear()
    q.enqueue(ticket("gone"))
    q.enqueue(ticket("stays"))
    await worker.asked.wait()  # the dispatcher waits for the worker with "gone" at the head
    q.cancel("gone", Cancelled("client left"))
    worker.usable.set()
    await worker.wait_sent(1)
    assert worker.sent == ["stays"] and [t.id for t in q.running()] == ["stays"]


@pytest.mark.parametrize("state", ["login_required", "down"])
async def test_after_refusing_a_request_for_the_worker_s_state_the_dispatcher_serves_the_next(
    dispatched: tuple[RequestQueue, StubWorker], state: str
) -> None:
    q, worker = dispatched
    worker.status_msg = protocol.WorkerStatus(state=state)  # type: ignore[arg-type]
    refused = ticket("refused")
    q.enqueue(refused)
    async with asyncio.timeout(5):
        assert isinstance(await refused.inbox.get(), Abort)
    worker.status_msg = protocol.WorkerStatus(state="ready")
    q.enqueue(ticket("served"))
    await worker.wait_sent(1)
    assert worker.sent == ["served"]


async def test_a_worker_connection_lost_aborts_every_running_job_not_yet_ended() -> None:
    worker = StubWorker(capacity=2)
    q = RequestQueue(10, cast("WorkerClient", worker))
    task = asyncio.create_task(q.dispatch())
    ended, running = ticket("ended"), ticket("running")
    q.enqueue(ended)
    q.enqueue(running)
    await worker.wait_sent(2)
    q.deliver(protocol.Done(id="ended", ts=0.0))  # the worker ended it; its handler has not finished yet
    q.connection_lost()
    items = [running.inbox.get_nowait() for _ in range(running.inbox.qsize())]
    assert any(isinstance(i, Abort) for i in items)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_a_key_s_ticket_put_back_at_the_front_keeps_its_other_tickets_and_turn() -> None:
    fq = queue_module.FairQueue()
    k1, k2, j1 = ticket("k1", owner="k"), ticket("k2", owner="k"), ticket("j1", owner="j")
    for t in (k1, k2, j1):
        fq.append(t)
    assert fq.popleft() is k1
    fq.appendleft(k1)  # it could not be submitted
    assert list(fq) == [k1, j1, k2] and fq.peek() is k1
    fq.remove(j1)  # the last ticket of a key leaves: so does its turn
    assert list(fq) == [k1, k2] and len(fq) == 2
    fq.remove(k1)
    fq.remove(k2)
    assert not fq and list(fq) == []


async def test_pokes_and_drains_leave_no_task_behind_and_raise_nothing() -> None:
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        worker = StubWorker()
        q = RequestQueue(10, cast("WorkerClient", worker))
        task = asyncio.create_task(q.dispatch())
        first, second, third = ticket("first"), ticket("second"), ticket("third")
        q.enqueue(first)
        q.enqueue(second)
        await worker.wait_sent(1)
        q.finish(second)  # a waiting request leaves
        q.deliver(protocol.Done(id="first", ts=0.0))
        q.finish(first)  # a running one that ended
        q.enqueue(third)
        await worker.wait_sent(2)
        q.finish(third)  # a running one whose client left: drained until the worker confirms
        q.deliver(protocol.Done(id="third", ts=0.0))
        await q.wait_for(lambda queue: len(queue) == 0)
        for _ in range(10):  # the poke and drain tasks run to their end (each may poke once more)
            if not q._drains:
                break
            await asyncio.gather(*q._drains)
            await asyncio.sleep(0)  # one loop pass: a finished task's done callbacks run (not a timed wait)
        assert errors == [] and not q._drains
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        loop.set_exception_handler(None)


async def test_a_request_put_back_after_a_lost_connection_is_queued_again_and_can_leave(
    dispatched: tuple[RequestQueue, StubWorker],
) -> None:
    q, worker = dispatched
    worker.break_next = True
    t = ticket("t")
    q.enqueue(t)
    async with asyncio.timeout(5), worker.submitted:
        await worker.submitted.wait_for(lambda: not worker.break_next)
    await q.wait_for(lambda queue: queue.snapshot()[0]["state"] == "queued")
    assert [r["id"] for r in q.snapshot()] == ["t"] and not q.busy
    q.finish(t)  # its client leaves while it waits for the worker to come back
    assert len(q) == 0
    worker.reconnected.set()
    q.enqueue(ticket("next"))  # the dispatcher goes on once the worker is back
    await worker.wait_sent(1)
    assert worker.sent == ["next"]


async def test_stages_are_kept_on_the_ticket_not_sent_to_the_client() -> None:
    """A job's stages become the ticket's timings (the record and ``server-timing``) and its degraded controls,
    each named once however many stages repeat it; the client's inbox gets none of them."""
    q = bare_queue()
    a = ticket("a")
    q.enqueue(a)
    q.deliver(protocol.Stage(id="a", ts=0.0, name="settings", ms=12.5, degraded=["top_p", "temperature"]))
    q.deliver(protocol.Stage(id="a", ts=0.0, name="fill", ms=40.0, degraded=["top_p", "stop"]))
    assert a.timings == {"settings": 12.5, "fill": 40.0}
    assert a.degraded == ["top_p", "temperature", "stop"]
    assert a.inbox.empty()
