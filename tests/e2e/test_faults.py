"""Faults from outside: stream proxy restarts, a killed browser, upstream failures, the DOM-only tier."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from typing import Any

import aiohttp
import pytest

from aistudio_sim.stack import Stack
from browser_worker.errors import BROWSER_RESTART_RETRY_S
from tests.e2e.conftest import PLAIN_MODEL, THINKING_MODEL

ERROR_FIELDS = {"message", "type", "param", "code"}


def tag() -> str:
    return uuid.uuid4().hex[:10]


def body(prompt: str, stream: bool = False, model: str = PLAIN_MODEL) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]}


async def complete(
    session: aiohttp.ClientSession, stack: Stack, prompt: str, **kwargs: Any
) -> tuple[int, dict[str, Any], Any]:
    async with session.post(stack.base_url + "/v1/chat/completions", json=body(prompt, **kwargs)) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers.copy()


async def stream_text(
    session: aiohttp.ClientSession, stack: Stack, prompt: str, on_content=None, model: str = PLAIN_MODEL
) -> tuple[str, list[dict[str, Any]]]:
    """Stream a completion; return the joined content and any error events."""
    text, errors, pieces = "", [], 0
    async with session.post(stack.base_url + "/v1/chat/completions", json=body(prompt, True, model)) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if not line.startswith(b"data: {"):
                continue
            data = json.loads(line[6:])
            if "error" in data:
                errors.append(data["error"])
                continue
            piece = data["choices"][0]["delta"].get("content") if data["choices"] else None
            if piece:
                text += piece
                pieces += 1
                if on_content is not None:
                    on_content(pieces)
    return text, errors


def assert_openai_error(payload: dict[str, Any]) -> dict[str, Any]:
    assert set(payload) == {"error"}, payload
    assert set(payload["error"]) == ERROR_FIELDS, payload
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    return payload["error"]


def answered_once(stack: Stack, marker: str) -> dict[str, Any]:
    found = [r for r in stack.sim_requests() if marker in r["prompt"]]
    assert len(found) == 1, f"{marker} reached the simulator {len(found)} times"
    return found[0]


async def wait_sim_streaming(stack: Stack, marker: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in await asyncio.to_thread(stack.sim_requests) if marker in r["prompt"]]
        if found and found[0].get("first_byte_at"):
            return
        assert time.monotonic() < deadline, f"{marker} never reached the simulator"
        await asyncio.sleep(0.05)  # polling an outside condition with a deadline


def restart_stream_proxy(stack: Stack) -> None:
    before = stack.pid("stream_proxy")
    out = stack.ctl("restart", "stream_proxy")
    assert "stream_proxy: started" in out, out
    assert stack.pid("stream_proxy") not in (0, before)


# --------------------------------------------------------------------------- stream proxy restarts


async def test_next_request_succeeds_right_after_a_stream_proxy_restart(stack: Stack):
    """Restarting stream_proxy between two requests: the next one, sent at once, is answered normally."""
    async with aiohttp.ClientSession() as session:
        status, first, _ = await complete(session, stack, "before the restart")
        assert status == 200
        await asyncio.to_thread(restart_stream_proxy, stack)
        marker = f"after-{tag()}"
        status, done, _ = await complete(session, stack, f"{marker} after the restart")
        assert status == 200, done
        assert (
            done["choices"][0]["message"]["content"]
            == answered_once(stack, marker)["response"]["answer_text"]
        )
        status, again, _ = await complete(session, stack, "and once more", stream=False)
        assert status == 200, again


async def test_no_request_is_lost_when_the_stream_proxy_restarts_during_a_queued_burst(stack: Stack):
    """Six requests queued while stream_proxy restarts: each is answered once, with its own answer."""
    burst = tag()
    markers = [f"burst-{burst}-{n}" for n in range(6)]
    async with aiohttp.ClientSession() as session:
        pending = [
            asyncio.create_task(complete(session, stack, f"{m} #sim:chunks=10 #sim:delay_ms=60"))
            for m in markers
        ]
        deadline = time.monotonic() + 30
        while True:
            async with session.get(stack.base_url + "/v1/queue") as resp:
                if (await resp.json())["length"] >= 4:
                    break
            assert time.monotonic() < deadline, "the burst never queued up"
            await asyncio.sleep(0.05)  # polling an outside condition with a deadline
        await asyncio.to_thread(restart_stream_proxy, stack)
        results = await asyncio.gather(*pending)
    for marker, (status, done, _) in zip(markers, results, strict=True):
        assert status == 200, (marker, done)
        assert f"You said: {marker}" in done["choices"][0]["message"]["content"]
        assert (
            done["choices"][0]["message"]["content"]
            == answered_once(stack, marker)["response"]["answer_text"]
        )


async def test_answer_streaming_through_a_stream_proxy_restart_completes_with_identical_text(stack: Stack):
    """stream_proxy restarted while a slow echo streams: the text equals the same prompt answered normally."""
    words = " ".join(f"w{n:02d}" for n in range(60))
    prompt = f"restart-echo {words} #sim:echo #sim:chunks=30 #sim:delay_ms=150"
    async with aiohttp.ClientSession() as session:
        reference, errors = await stream_text(session, stack, prompt)
        assert not errors and prompt in reference
        loop = asyncio.get_running_loop()
        restart: list[asyncio.Future[None]] = []

        def on_content(pieces: int) -> None:
            if pieces == 3 and not restart:
                restart.append(loop.run_in_executor(None, restart_stream_proxy, stack))

        text, errors = await stream_text(session, stack, prompt, on_content)
        assert restart, "the answer ended before the restart could start"
        await restart[0]
    assert not errors, errors
    assert text == reference
    assert stack.wait_healthy(30)["components"]["stream_proxy"]["state"] == "ok"


async def test_answer_outlasting_a_stream_proxy_restarts_grace_fails_with_a_502_that_names_the_restart(
    stack: Stack,
):
    """An answer still streaming when the restarting stream_proxy's SHUTDOWN_GRACE_S is over: a retryable
    502 saying the stream proxy shut down, not mitmproxy's "Client disconnected"; the next request is fine."""
    grace = float(stack.env["SHUTDOWN_GRACE_S"])
    delay_ms = 300  # an event every 0.3 s: far inside SILENCE_TIMEOUT_MS, so only the restart ends it
    chunks = int((grace + 20) * 1000 / delay_ms)  # streams about 20 s longer than the grace
    marker = f"outlast-{tag()}"
    prompt = f"{marker} #sim:words={2 * chunks} #sim:chunks={chunks} #sim:delay_ms={delay_ms}"
    async with aiohttp.ClientSession() as session:
        pending = asyncio.create_task(complete(session, stack, prompt))
        await wait_sim_streaming(stack, marker)
        await asyncio.to_thread(restart_stream_proxy, stack)  # returns once the new proxy has started
        status, payload, headers = await pending
        assert status == 502, payload
        error = assert_openai_error(payload)
        assert (error["type"], error["code"]) == ("upstream_error", "stream_proxy_shutdown"), error
        assert "stream proxy shut down" in error["message"] and "retry" in error["message"], error
        assert "disconnected" not in error["message"].lower(), error
        assert float(headers["Retry-After"]) > 0
        deadline = time.monotonic() + 10
        while not (record := answered_once(stack, marker)).get("ended"):
            assert time.monotonic() < deadline, f"the cut upstream request never ended: {record}"
            await asyncio.sleep(0.1)  # polling an outside condition with a deadline
        assert record["ended"] == "client_closed", record  # the browser's connection was cut mid-answer
        stack.wait_healthy(30)
        status, done, _ = await complete(session, stack, "after the cut")
        assert status == 200, done


async def test_request_sent_while_stream_proxy_is_stopped_is_answered_once_it_is_started(stack: Stack):
    """stream_proxy stopped: /health 503 names it; a request sent meanwhile waits and is answered after start."""
    await request_rides_out_a_stopped_proxy(stack)


async def test_first_request_of_a_fresh_stack_waits_for_a_restarting_stream_proxy():
    """A fresh stack whose stream_proxy is down when its first request arrives: answered once it is back."""
    with Stack(prefix="aisp-fresh-") as fresh:
        await request_rides_out_a_stopped_proxy(fresh)


async def request_rides_out_a_stopped_proxy(stack: Stack) -> None:
    assert "stream_proxy: stopped" in await asyncio.to_thread(stack.ctl, "stop", "stream_proxy")
    marker = f"while-down-{tag()}"
    try:
        status, health = stack.health()
        assert status == 503 and health["components"]["stream_proxy"]["state"] == "down", health
        async with aiohttp.ClientSession() as session:
            pending = asyncio.create_task(complete(session, stack, f"{marker} sent while the proxy is down"))
            deadline = time.monotonic() + 20
            while True:  # the request has reached the worker, which is waiting for the proxy
                async with session.get(stack.base_url + "/v1/queue") as resp:
                    rows = (await resp.json())["data"]
                if rows and rows[0]["state"] == "running":
                    break
                assert not pending.done(), await pending
                assert time.monotonic() < deadline, rows
                await asyncio.sleep(0.05)  # polling an outside condition with a deadline
            assert "stream_proxy: started" in await asyncio.to_thread(stack.ctl, "start", "stream_proxy")
            status, done, _ = await pending
    finally:
        if stack.states().get("stream_proxy") != "RUNNING":
            stack.ctl("start", "stream_proxy")
    assert status == 200, done
    assert done["choices"][0]["message"]["content"] == answered_once(stack, marker)["response"]["answer_text"]
    stack.wait_healthy(30)


async def test_request_gives_up_with_503_when_stream_proxy_stays_stopped(stack: Stack):
    """stream_proxy left stopped: a request ends in a bounded time with 503 + Retry-After naming the proxy."""
    assert "stream_proxy: stopped" in await asyncio.to_thread(stack.ctl, "stop", "stream_proxy")
    try:
        async with aiohttp.ClientSession() as session:
            started = time.monotonic()
            status, payload, headers = await complete(session, stack, "nobody restarts the proxy")
            waited = time.monotonic() - started
    finally:
        assert "stream_proxy: started" in await asyncio.to_thread(stack.ctl, "start", "stream_proxy")
    assert status == 503, payload
    error = assert_openai_error(payload)
    assert error["type"] == "service_unavailable" and "proxy" in error["message"].lower(), error
    assert float(headers["Retry-After"]) > 0
    assert waited < 40, f"gave up only after {waited:.0f} s"
    stack.wait_healthy(30)


# --------------------------------------------------------------------------- the browser


async def test_killed_browser_fails_the_running_request_clearly_and_the_next_succeeds(stack: Stack):
    """SIGKILL on Chromium mid-answer: that request gets a 503 naming the crash with a Retry-After the measured
    recovery fits in; a request sent right away waits for the relaunch and is answered within that time."""
    marker = f"kill-{tag()}"
    async with aiohttp.ClientSession() as session:
        running = asyncio.create_task(
            complete(session, stack, f"{marker} #sim:words=80 #sim:chunks=40 #sim:delay_ms=150")
        )
        await wait_sim_streaming(stack, marker)
        browsers = stack.browser_pids()
        assert browsers, "no Chromium found under browser_worker"
        for pid in browsers:
            os.kill(pid, signal.SIGKILL)
        status, payload, headers = await running
        killed_at = time.monotonic()
        assert status == 503, payload
        error = assert_openai_error(payload)
        assert error["message"].startswith("The browser crashed; restarting"), error
        assert headers["Retry-After"] == str(BROWSER_RESTART_RETRY_S)
        status, done, _ = await complete(session, stack, "after the browser died")
        assert status == 200, done
        recovered = time.monotonic() - killed_at
        print(f"\nanswered again {recovered:.1f} s after the crash (Retry-After {BROWSER_RESTART_RETRY_S} s)")
        assert recovered < BROWSER_RESTART_RETRY_S, "the documented Retry-After is shorter than the recovery"
        assert done["choices"][0]["message"]["content"].startswith(f"[simulated {PLAIN_MODEL}]")
    assert stack.browser_pids() and not set(stack.browser_pids()) & set(browsers)


# --------------------------------------------------------------------------- upstream failures


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ("quota", 429, "insufficient_quota"),
        ("rate_limit", 429, "rate_limit_exceeded"),
        ("permission", 403, "permission_denied"),
        ("internal", 502, "upstream_error"),
        ("inline", 429, "insufficient_quota"),
        ("cut", 502, "upstream_error"),
        ("stall", 504, "upstream_timeout"),
    ],
)
async def test_simulator_failure_gives_the_documented_error_and_a_ready_system(
    stack: Stack, directive, status, code
):
    """Each upstream failure: its status and code in the OpenAI error shape, then /health 200 and a good answer."""
    async with aiohttp.ClientSession() as session:
        got, payload, headers = await complete(session, stack, f"fail #sim:error={directive} #sim:words=40")
        assert got == status, payload
        error = assert_openai_error(payload)
        assert error["code"] == code
        if status == 429:
            assert float(headers["Retry-After"]) > 0
        assert headers.get("x-request-id")
        if directive == "stall":  # the worker gave up: the page's generation must be stopped too
            answered_at = time.time()
            deadline = time.monotonic() + 10
            while not (record := stack.sim_inspect("requests/last")).get("ended"):
                assert time.monotonic() < deadline, f"the stalled upstream request was never closed: {record}"
                await asyncio.sleep(0.1)  # polling an outside condition with a deadline
            assert record["ended"] == "client_closed", record
            assert record["ended_at"] - answered_at < 2.0
        stack.wait_healthy(30)
        ok, done, _ = await complete(session, stack, "after the failure")
        assert ok == 200, done


async def test_simulator_failure_mid_stream_ends_with_an_error_event(stack: Stack):
    """A cut upstream stream: the SSE client gets the text so far, one OpenAI error event, and [DONE]."""
    async with aiohttp.ClientSession() as session:
        text, errors = await stream_text(session, stack, "cut #sim:error=cut #sim:words=80 #sim:chunks=8")
        assert len(errors) == 1 and set(errors[0]) == ERROR_FIELDS
        assert errors[0]["type"] == "upstream_error"
        planned = stack.sim_inspect("requests/last")["response"]["answer_text"]
        assert planned.startswith(text) and len(text) < len(planned)
        stack.wait_healthy(30)


# --------------------------------------------------------------------------- model switch


async def test_refused_model_switch_is_a_422_naming_the_model_and_the_next_request_succeeds(stack: Stack):
    """A listed model the page refuses (docs/aistudio.md §8): HTTP 422 in the OpenAI error shape naming it, nothing sent
    upstream, a streamed request gets the same 422; the previous model and another answer next."""
    refused, marker = "gemini-2.5-flash-lite", tag()
    assert refused in [m["id"] for m in stack.get("/v1/models")[1]["data"]]
    async with aiohttp.ClientSession() as session:
        status, done, _ = await complete(session, stack, "before the refusal", model=PLAIN_MODEL)
        assert status == 200, done
        stack.sim_inspect("config", "POST", {"page_unknown_models": [refused]})
        try:
            status, payload, headers = await complete(session, stack, f"refused {marker}", model=refused)
            assert status == 422, payload
            error = assert_openai_error(payload)
            assert (error["type"], error["code"]) == ("invalid_request_error", "model_switch_failed"), error
            assert refused in error["message"]
            assert headers.get("x-request-id")
            # streamed: the failure comes before any output, so it is the same 422, not an in-band event
            async with session.post(
                stack.base_url + "/v1/chat/completions", json=body(f"refused stream {marker}", True, refused)
            ) as resp:
                assert resp.status == 422 and resp.content_type == "application/json"
                error = assert_openai_error(await resp.json())
            assert error["code"] == "model_switch_failed" and refused in error["message"]
            assert not [r for r in stack.sim_requests() if marker in r["prompt"]]
        finally:
            stack.sim_inspect("config", "POST", {"page_unknown_models": []})

        stack.wait_healthy(30)
        for model in (PLAIN_MODEL, THINKING_MODEL):
            status, done, _ = await complete(session, stack, f"after the refusal on {model}", model=model)
            assert status == 200, done
            assert done["choices"][0]["message"]["content"].startswith(f"[simulated {model}]")
            assert stack.sim_inspect("requests/last")["model"] == model


# --------------------------------------------------------------------------- DOM tier


async def test_dom_tier_serves_models_non_stream_and_stream_without_the_stream_proxy(stack_dom: Stack):
    """STREAM_PORT=0: health says disabled; models, a plain answer, a streamed answer and reasoning all work."""
    status, health = stack_dom.health()
    assert status == 200 and health["components"]["stream_proxy"]["state"] == "disabled"
    assert stack_dom.get("/api/info")[1]["capture_mode"] == "dom"
    status, models = stack_dom.get("/v1/models")
    assert status == 200 and all(m["description"].startswith("[simulated]") for m in models["data"])
    async with aiohttp.ClientSession() as session:
        status, done, _ = await complete(session, stack_dom, "DOM tier #sim:words=30")
        assert status == 200, done
        assert (
            done["choices"][0]["message"]["content"]
            == stack_dom.sim_inspect("requests/last")["response"]["answer_text"]
        )
        text, errors = await stream_text(
            session, stack_dom, "DOM stream #sim:words=40 #sim:chunks=8 #sim:delay_ms=100"
        )
        assert not errors
        assert text == stack_dom.sim_inspect("requests/last")["response"]["answer_text"]
        async with session.post(
            stack_dom.base_url + "/v1/chat/completions",
            json={**body("DOM think #sim:think=12", model=THINKING_MODEL), "reasoning_effort": "low"},
        ) as resp:
            assert resp.status == 200
            message = (await resp.json())["choices"][0]["message"]
        planned = stack_dom.sim_inspect("requests/last")["response"]
        assert message["content"] == planned["answer_text"]
        assert message["reasoning_content"].split() == planned["thought_text"].split()


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [("quota", 429, "insufficient_quota"), ("internal", 502, "upstream_error"), ("permission", 403, None)],
)
async def test_dom_tier_reports_upstream_failures_from_the_page(stack_dom: Stack, directive, status, code):
    """STREAM_PORT=0: failures are read from the page (toast, quota callout) and mapped like the stream tier."""
    async with aiohttp.ClientSession() as session:
        got, payload, _ = await complete(session, stack_dom, f"fail #sim:error={directive}")
        assert got == status, payload
        error = assert_openai_error(payload)
        if code is not None:
            assert error["code"] == code
        stack_dom.wait_healthy(30)
        ok, done, _ = await complete(session, stack_dom, "after the failure")
        assert ok == 200, done
