"""A bounded schemathesis run over /openapi.json: no 5xx, every 4xx in the OpenAI error shape.

The app and the fake worker run on a free port in a background thread (schemathesis
drives requests synchronously). Chat cases get a valid model id so the fuzzer reaches
the deeper validation instead of stopping at "unknown model".
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from api_server.app import create_app
from api_server.openapi import openapi_document
from shared import protocol
from tests.api_server.conftest import make_settings
from tests.api_server.fake_worker import FakeWorker, Step, content, finish, tool_call

schema = schemathesis.openapi.from_dict(openapi_document("http://127.0.0.1"))


class ThreadedStack:
    """The app plus a fake worker, served from their own event loop in a thread."""

    def __init__(self, base: Path) -> None:
        self.settings = make_settings(base)
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._main(),), daemon=True
        )

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with FakeWorker(self.settings.worker_socket) as fake:
            fake.script_fn = scripted_answer
            runner = web.AppRunner(create_app(self.settings), handler_cancellation=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    def __enter__(self) -> ThreadedStack:
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    base = Path(tempfile.mkdtemp(prefix="aisp-", dir="/tmp"))
    try:
        with ThreadedStack(base) as stack:
            url = f"http://127.0.0.1:{stack.port}"
            requests.get(f"{url}/v1/models", timeout=5)  # the worker status has arrived once this answers 200
            yield url
    finally:
        shutil.rmtree(base, ignore_errors=True)


def is_gemini(path: str) -> bool:
    return path.startswith("/v1beta")


def check_openai_shape(response: Any, path: str = "") -> None:
    """OpenAI's error shape (Google's on the Gemini ``path``s, Anthropic's on ``/v1/messages``)."""
    if response.status_code >= 400:
        body = response.json()
        if isinstance(body, list) and ":streamGenerateContent" in path:
            [body] = body  # the JSON-array stream's error is an array too, as Google sends it
        if path.startswith("/v1/messages"):
            assert set(body) == {"type", "error"} and body["type"] == "error", body
            assert set(body["error"]) == {"type", "message"}, body
            assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
            return
        assert set(body) == {"error"}, body
        if is_gemini(path):
            assert {"code", "message", "status"} <= set(body["error"]), body
            assert body["error"]["code"] == response.status_code, body
        else:
            assert {"message", "type", "param", "code"} <= set(body["error"]), body
        # The one allowed 5xx: the (fake) model's answer does not match a fuzzed json_schema.
        reasons = [d.get("reason") for d in body["error"].get("details") or []]
        if body["error"]["code"] == "invalid_json_output" or "INVALID_JSON_OUTPUT" in reasons:
            return
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"


def scripted_answer(submit: protocol.JobSubmit) -> list[Step]:
    """Plain text, "{}" when JSON output was asked for, a call when tool_choice demands one (a fuzzed request
    that is valid gets an answer that follows it)."""
    job = submit.job
    choice = job.tool_choice
    names = [t["function"]["name"] for t in job.tools or [] if t.get("type") == "function"]
    if names and (choice == "required" or isinstance(choice, dict)):
        name = choice["function"]["name"] if isinstance(choice, dict) else names[0]
        return [tool_call(name, {}), finish()]
    kind = (job.response_format or {}).get("type")
    return [content("{}" if kind in ("json_object", "json_schema") else "fuzzed"), finish()]


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_never_5xx_and_errors_are_openai_shaped(case: Any, base_url: str) -> None:
    """Schemathesis-generated requests: no 5xx; 4xx bodies are OpenAI errors."""
    if case.path in ("/v1/chat/completions", "/v1/messages") and isinstance(case.body, dict):
        case.body["model"] = "gemini-2.5-pro"
    if is_gemini(case.path) and ":" in case.path:
        case.path_parameters = {**(case.path_parameters or {}), "model": "gemini-2.5-pro"}
    response = case.call(base_url=base_url, timeout=30)
    check_openai_shape(response, case.path)
