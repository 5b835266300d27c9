"""Issue 19's records against the fake worker: the usage ledger (real SQLite), ``/api/usage`` and its CSV,
``/api/requests/{id}`` timelines, ``server-timing``, and ``/metrics`` parsed with Prometheus' own parser."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from api_server.app import create_app
from api_server.app_keys import LEDGER, QUEUE, WORKER
from shared import protocol
from shared.settings import Settings
from tests.api_server.conftest import make_settings
from tests.api_server.fake_worker import HANG, Event, FakeWorker, content, finish, reasoning, usage

MODEL = "gemini-2.5-pro"
ADMIN = "observability-admin-key"
USER = [{"role": "user", "content": "hi"}]
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": MODEL, "messages": USER}),
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": 100, "messages": USER}),
    "responses": ("/v1/responses", {"model": MODEL, "input": "hi"}),
    "gemini": (
        f"/v1beta/models/{MODEL}:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    ),
}
ANSWER = [reasoning("thinking "), content("an answer"), usage(11, 7, reasoning_tokens=3), finish()]


def send(client: TestClient, dialect: str, **kwargs: Any) -> Any:
    path, body = BODIES[dialect]
    return client.post(path, json=body, **kwargs)


def export(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def usage_rows(client: TestClient, **headers: str) -> list[dict[str, str]]:
    resp = await client.get("/api/usage/export?format=csv", headers=headers)
    assert resp.status == 200, await resp.text()
    return export(await resp.text())


def metrics_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels), as Prometheus' parser reads the page."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def fake_script(fake: FakeWorker) -> FakeWorker:
    fake.script = list(ANSWER)
    fake.timings = {"accepted": 1.0, "settings": 40.0, "fill": 60.0, "submit": 80.0, "first_event": 250.0}
    fake.slots = [protocol.SlotStatus(id="s1", state="ready", account="demo@example.com")]
    return fake


async def test_every_dialect_s_request_is_one_ledger_row_with_its_tokens_slot_and_timings(
    ready: TestClient, fake_script: FakeWorker
) -> None:
    await ready.app[WORKER].status(timeout=2)  # the status with the slot list has arrived  # type: ignore[index]
    for dialect, (path, body) in BODIES.items():
        resp = await ready.post(path, json=body, headers={"anthropic-version": "2023-06-01"})
        assert resp.status == 200, (dialect, await resp.text())
    rows = await usage_rows(ready)
    assert [r["dialect"] for r in rows] == list(BODIES)
    for row in rows:
        assert (row["model"], row["status"], row["outcome"], row["stream"]) == (MODEL, "200", "ok", "0")
        assert (row["prompt_tokens"], row["completion_tokens"], row["reasoning_tokens"]) == ("11", "7", "3")
        assert row["tokens_estimated"] == "0" and row["key_id"] == ""
        assert (row["slot"], row["account"]) == ("s1", "demo@example.com")
        assert float(row["total_ms"]) >= float(row["first_token_ms"]) >= float(row["queue_ms"]) >= 0
    summary = await (await ready.get("/api/usage?group_by=dialect")).json()
    by_dialect = {row["dialect"]: row for row in summary["data"]}
    assert set(by_dialect) == set(BODIES)
    assert all(
        r["requests"] == 1 and r["succeeded"] == 1 and r["prompt_tokens"] == 11 for r in by_dialect.values()
    )


async def test_failures_are_rows_too_with_their_status_and_outcome(
    ready: TestClient, fake: FakeWorker, own_session: aiohttp.ClientSession
) -> None:
    bad = await ready.post("/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert bad.status == 400
    missing = await ready.post("/v1/messages", json={**BODIES["anthropic"][1], "model": "nope"})
    assert missing.status == 404
    fake.script = [content("partial"), HANG]
    stream = await ready.post("/v1/chat/completions", json={"model": MODEL, "messages": USER, "stream": True})
    await stream.content.readuntil(b"partial")
    running = ready.app[QUEUE].active()[0].id  # type: ignore[index]
    assert (await ready.post(f"/v1/cancel/{running}")).status == 200
    await stream.read()
    gone = await own_session.post("/v1/responses", json={"model": MODEL, "input": "hi", "stream": True})
    await gone.content.readuntil(b"partial")
    gone.close()
    await own_session.close()
    await fake.wait_for(lambda f: len(f.cancelled) == 2)
    await ready.app[QUEUE].wait_for(lambda q: len(q) == 0)  # type: ignore[index]
    rows = await usage_rows(ready)
    got = [(r["dialect"], r["status"], r["outcome"]) for r in rows]
    assert got == [
        ("chat", "400", "invalid_value"),
        ("anthropic", "404", "model_not_found"),
        ("chat", "499", "request_cancelled"),
        ("responses", "499", "client_disconnected"),
    ], got


@pytest.mark.parametrize("settings_overrides", [{"queue_limit": 1}])
async def test_a_refused_request_is_a_429_row(ready: TestClient, fake: FakeWorker) -> None:
    fake.script = [HANG]
    first = asyncio.ensure_future(send(ready, "gemini"))
    await fake.wait_submitted(1)
    second = asyncio.ensure_future(send(ready, "gemini"))
    await ready.app[QUEUE].wait_for(lambda q: len(q) == 2)  # type: ignore[index]
    refused = await send(ready, "gemini")
    assert refused.status == 429
    for ticket in list(ready.app[QUEUE].active())[::-1]:  # type: ignore[index]
        await ready.post(f"/v1/cancel/{ticket.id}")
    await asyncio.gather(first, second)
    rows = await usage_rows(ready)
    assert ("gemini", "429", "queue_full") in [(r["dialect"], r["status"], r["outcome"]) for r in rows]


async def test_the_ledger_survives_a_restart(settings: Settings, fake_script: FakeWorker) -> None:
    for _ in range(2):  # the same data folder, two lives of the app
        async with TestClient(TestServer(create_app(settings))) as client:
            await client.app[WORKER].wait_usable()  # type: ignore[index]
            assert (await send(client, "chat")).status == 200
            rows = await usage_rows(client)
    assert len(rows) == 2 and rows[0]["request_id"] != rows[1]["request_id"]
    assert oct((settings.data_dir / "usage.sqlite3").stat().st_mode & 0o777) == "0o600"
    assert sqlite3.connect(settings.data_dir / "usage.sqlite3").execute("PRAGMA journal_mode").fetchone() == (
        "wal",
    )


async def test_an_unwritable_ledger_logs_an_error_and_requests_still_succeed(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = short_dir / "not-a-folder"
    blocked.write_text("a file where the data folder should be")
    settings = make_settings(short_dir, data_dir=blocked)
    async with FakeWorker(settings.worker_socket) as fake:
        fake.script = list(ANSWER)
        async with TestClient(TestServer(create_app(settings))) as client:
            await client.app[WORKER].wait_usable()  # type: ignore[index]
            with caplog.at_level(logging.ERROR, "api_server.usage_ledger"):
                for _ in range(3):
                    assert (await send(client, "chat")).status == 200
                ledger = client.app[LEDGER]  # type: ignore[index]
                assert ledger.flush(5)
    assert ledger.dropped == 3 and ledger.written == 0
    assert [r.message for r in caplog.records if "cannot be written" in r.message]


@pytest.mark.parametrize("settings_overrides", [{"usage_max_mb": 0.012}])
async def test_a_full_ledger_drops_rows_not_requests(
    ready: TestClient, fake_script: FakeWorker, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite's own "database or disk is full" (the file may not grow past ``USAGE_MAX_MB``): rows are
    dropped and logged, every request is served."""
    with caplog.at_level(logging.ERROR, "api_server.usage_ledger"):
        for _ in range(40):
            assert (await send(ready, "chat")).status == 200
        ledger = ready.app[LEDGER]  # type: ignore[index]
        assert ledger.flush(5)
    assert 0 < ledger.written < 40 and ledger.written + ledger.dropped == 40
    assert ["full" in r.message for r in caplog.records if "cannot be written" in r.message] == [True]
    assert len(await usage_rows(ready)) == ledger.written


@pytest.mark.parametrize("settings_overrides", [{"admin_key": ADMIN}])
async def test_keys_see_their_own_usage_and_timelines_and_the_admin_sees_all(
    ready: TestClient, fake_script: FakeWorker
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    keys = []
    for label in ("a", "b"):
        made = await ready.post("/api/keys", json={"label": label}, headers=admin)
        keys.append(await made.json())
    ids = []
    for key in keys:
        resp = await send(ready, "chat", headers={"Authorization": f"Bearer {key['key']}"})
        assert resp.status == 200
        ids.append(resp.headers["x-request-id"])
    a, b = ({"Authorization": f"Bearer {k['key']}"} for k in keys)
    assert [r["request_id"] for r in await usage_rows(ready, **a)] == [ids[0]]
    assert [r["request_id"] for r in await usage_rows(ready, **admin)] == ids
    assert (await ready.get(f"/api/requests/{ids[0]}", headers=a)).status == 200
    assert (await ready.get(f"/api/requests/{ids[1]}", headers=a)).status == 404
    assert (await ready.get(f"/api/requests/{ids[1]}", headers=admin)).status == 200
    assert (await ready.get("/api/usage")).status == 401
    assert (await ready.get("/metrics", headers=a)).status == 401
    assert (await ready.get("/metrics", headers=admin)).status == 200


async def test_a_timeline_agrees_with_the_client_s_own_clock(
    ready: TestClient, fake_script: FakeWorker
) -> None:
    sent = time.time()
    resp = await ready.post("/v1/chat/completions", json={"model": MODEL, "messages": USER, "stream": True})
    first_line = await resp.content.readline()
    first_seen = time.time()
    await resp.read()
    done = time.time()
    assert first_line.startswith(b"data: ")
    timing = resp.headers["server-timing"]
    assert "queue;dur=" in timing and "first-token;dur=" in timing
    timeline = await (await ready.get(f"/api/requests/{resp.headers['x-request-id']}")).json()
    stages = timeline["stages"]
    assert sent <= timeline["at"] <= first_seen
    assert list(stages) == ["queued", "started", "first_token", "finished"]
    assert 0 <= stages["queued"] <= stages["started"] <= stages["first_token"] <= stages["finished"]
    assert stages["first_token"] / 1000 <= first_seen - sent
    assert stages["finished"] / 1000 <= done - sent
    assert timeline["slot"] == "s1" and timeline["worker"]["submit"] == 80.0
    whole = await send(ready, "chat")
    assert "upstream;dur=250.0" in whole.headers["server-timing"]


async def test_metrics_count_a_known_sequence_of_requests(ready: TestClient, fake_script: FakeWorker) -> None:
    for _ in range(2):
        assert (await send(ready, "chat")).status == 200
    assert (await send(ready, "anthropic", headers={"anthropic-version": "2023-06-01"})).status == 200
    assert (await ready.post("/v1/chat/completions", json={"model": MODEL, "messages": []})).status == 400
    page = await ready.get("/metrics")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/plain")
    m = metrics_of(await page.text())
    requests = "aistudio_proxy_requests_total"
    assert m[(requests, (("dialect", "chat"), ("model", MODEL), ("status", "200")))] == 2
    assert m[(requests, (("dialect", "anthropic"), ("model", MODEL), ("status", "200")))] == 1
    assert m[(requests, (("dialect", "chat"), ("model", ""), ("status", "400")))] == 1
    assert m[("aistudio_proxy_first_token_seconds_count", (("dialect", "chat"),))] == 2
    assert m[("aistudio_proxy_tokens_total", (("kind", "prompt"), ("model", MODEL)))] == 33
    assert m[("aistudio_proxy_tokens_total", (("kind", "reasoning"), ("model", MODEL)))] == 9
    assert m[("aistudio_proxy_queue_length", ())] == 0
    assert m[("aistudio_proxy_worker_up", ())] == 1
    assert m[("aistudio_proxy_account_state", (("account", "demo"), ("state", "ready")))] == 1
    assert m[("aistudio_proxy_process_resident_memory_bytes", (("process", "api_server"),))] > 10 * 2**20
    assert m[("aistudio_proxy_slot_busy_seconds_total", (("slot", "s1"),))] > 0


@pytest.fixture
async def own_session(ready: TestClient) -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession(base_url=str(ready.make_url("/")))
    yield session
    await session.close()


STREAMED: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": MODEL, "messages": USER, "stream": True}),
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": 100, "messages": USER, "stream": True}),
    "responses": ("/v1/responses", {"model": MODEL, "input": "hi", "stream": True}),
    "gemini": (
        f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    ),
}


async def test_an_answer_without_some_run_settings_names_them_in_every_dialect(
    ready: TestClient, fake_script: FakeWorker
) -> None:
    skipped = Event(protocol.Stage, {"name": "settings", "ms": 40.0, "degraded": ["top_p", "temporary_chat"]})
    fake_script.script = [skipped, *ANSWER]
    headers = {"anthropic-version": "2023-06-01"}
    for dialect, (path, body) in [*BODIES.items(), *STREAMED.items()]:
        resp = await ready.post(path, json=body, headers=headers)
        assert resp.status == 200, (dialect, await resp.text())
        assert resp.headers["x-aistudio-degraded"] == "top_p, temporary_chat", dialect
        timeline = await (await ready.get(f"/api/requests/{resp.headers['x-request-id']}")).json()
        assert timeline["degraded"] == ["top_p", "temporary_chat"]
    fake_script.script = list(ANSWER)
    plain = await send(ready, "chat")
    assert "x-aistudio-degraded" not in plain.headers
    samples = metrics_of(await (await ready.get("/metrics")).text())
    assert samples[("aistudio_proxy_degraded_requests_total", (("control", "top_p"),))] == 8
    assert samples[("aistudio_proxy_degraded_requests_total", (("control", "temporary_chat"),))] == 8
