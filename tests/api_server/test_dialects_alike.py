"""The rules every dialect shares (issue 18), checked for each one against the fake worker: a client that
goes away cancels its job, ``/v1/cancel`` ends a running stream with the dialect's in-band error, a full
queue is refused (429; Anthropic's 529) with ``Retry-After`` in the dialect's shape, and client keys guard every dialect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from api_server.app_keys import QUEUE
from api_server.queue import RequestQueue
from tests.api_server.fake_worker import HANG, FakeWorker, content

MODEL = "gemini-2.5-pro"
ADMIN = "admin-key-for-dialect-tests"


@dataclass(frozen=True)
class Dialect:
    name: str
    path: str
    body: Callable[[bool], dict[str, Any]]
    #: The error object of an error body (checking the dialect's shape on the way).
    error: Callable[[Any], dict[str, Any]]
    headers: tuple[tuple[str, str], ...] = ()

    def post(self, session: Any, label: str, stream: bool = True, **headers: str) -> Any:
        path = (
            self.path.replace(":generateContent", ":streamGenerateContent?alt=sse") if stream else self.path
        )
        sent = {**dict(self.headers), "x-request-id": label, **headers}
        return session.post(path, json=self.body(stream), headers=sent)


def _openai_error(body: Any) -> dict[str, Any]:
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return dict(body["error"])


def _anthropic_error(body: Any) -> dict[str, Any]:
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    return dict(body["error"])


def _google_error(body: Any) -> dict[str, Any]:
    assert set(body) == {"error"} and {"code", "message", "status"} <= set(body["error"]), body
    return dict(body["error"])


USER = [{"role": "user", "content": "hi"}]
DIALECTS = [
    Dialect(
        "chat",
        "/v1/chat/completions",
        lambda s: {"model": MODEL, "messages": USER, "stream": s},
        _openai_error,
    ),
    Dialect(
        "anthropic",
        "/v1/messages",
        lambda s: {"model": MODEL, "max_tokens": 100, "messages": USER, "stream": s},
        _anthropic_error,
        (("anthropic-version", "2023-06-01"),),
    ),
    Dialect(
        "responses", "/v1/responses", lambda s: {"model": MODEL, "input": "hi", "stream": s}, _openai_error
    ),
    Dialect(
        "gemini",
        f"/v1beta/models/{MODEL}:generateContent",
        lambda s: {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        _google_error,
    ),
]
IDS = [d.name for d in DIALECTS]


def queue_of(client: TestClient) -> RequestQueue:
    return client.app[QUEUE]  # type: ignore[index]


def server_id(client: TestClient, label: str) -> str:
    return next(t.id for t in queue_of(client).active() if t.client_request_id == label)


@pytest.fixture
async def own_session(ready: TestClient) -> AsyncIterator[aiohttp.ClientSession]:
    """A separate client session whose connection a test can drop."""
    session = aiohttp.ClientSession(base_url=str(ready.make_url("/")))
    yield session
    await session.close()


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
async def test_a_client_that_leaves_a_running_stream_cancels_its_job(
    ready: TestClient, fake: FakeWorker, own_session: aiohttp.ClientSession, dialect: Dialect
) -> None:
    fake.script = [content("partial"), HANG]
    resp = await dialect.post(own_session, "leaves")
    await resp.content.readuntil(b"partial")
    resp.close()
    await own_session.close()
    await fake.wait_cancelled(fake.submitted[0].id)
    await queue_of(ready).wait_for(lambda q: len(q) == 0)


#: The in-band error that ends each dialect's stream when the job is cancelled.
IN_BAND = {
    "chat": b'"code":"request_cancelled"',
    "anthropic": b"event: error",
    "responses": b"response.failed",
    "gemini": b'"status":"CANCELLED"',
}


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
async def test_cancel_ends_a_running_stream_with_the_dialect_s_in_band_error(
    ready: TestClient, fake: FakeWorker, dialect: Dialect
) -> None:
    fake.script = [content("partial"), HANG]
    resp = await dialect.post(ready, "cancel-me")
    assert resp.status == 200
    await resp.content.readuntil(b"partial")
    running = server_id(ready, "cancel-me")
    assert (await ready.post(f"/v1/cancel/{running}")).status == 200
    rest = await resp.content.read()
    assert IN_BAND[dialect.name] in rest, rest
    await fake.wait_cancelled(running)


#: A full queue's status: Anthropic's API says 529 ``overloaded_error`` when it cannot take a request.
FULL_STATUS = {"chat": 429, "anthropic": 529, "responses": 429, "gemini": 429}


@pytest.mark.parametrize("settings_overrides", [{"queue_limit": 1}])
@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
async def test_a_full_queue_is_refused_with_retry_after_in_the_dialect_s_shape(
    ready: TestClient, fake: FakeWorker, dialect: Dialect
) -> None:
    fake.script = [HANG]
    running = asyncio.ensure_future(dialect.post(ready, "running", stream=False))
    await fake.wait_submitted(1)
    waiting = asyncio.ensure_future(dialect.post(ready, "waiting", stream=False))
    await queue_of(ready).wait_for(lambda q: len(q) == 2)
    resp = await dialect.post(ready, "refused", stream=False)
    assert resp.status == FULL_STATUS[dialect.name] and int(resp.headers["Retry-After"]) >= 1
    error = dialect.error(await resp.json())
    assert "queue" in error["message"].lower()
    for label in ("waiting", "running"):
        await ready.post(f"/v1/cancel/{server_id(ready, label)}")
    await asyncio.gather(running, waiting)


@pytest.mark.parametrize("settings_overrides", [{"admin_key": ADMIN}])
@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
async def test_once_a_client_key_exists_every_dialect_wants_one(
    ready: TestClient, fake: FakeWorker, dialect: Dialect
) -> None:
    created = await ready.post("/api/keys", json={"label": "k"}, headers={"Authorization": f"Bearer {ADMIN}"})
    key = (await created.json())["key"]
    fake.script = [content("ok")]
    refused = await dialect.post(ready, "no-key", stream=False)
    assert refused.status == 401
    dialect.error(await refused.json())
    wrong = await dialect.post(ready, "wrong-key", stream=False, **{"x-api-key": "sk-aisp-wrong"})
    assert wrong.status == 401
    served = await dialect.post(ready, "with-key", stream=False, **{"x-api-key": key})
    assert served.status == 200, await served.text()
