"""The HTTP surface outside the happy path: error shapes and statuses, ids, info, SSE keep-alive."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from api_server.app_keys import QUEUE
from tests.api_server.conftest import make_settings
from tests.api_server.fake_worker import HANG, FakeWorker, Wait, content, error, finish

BODY: dict[str, Any] = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}


def assert_openai_error(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/embeddings",
        "/v1/images/generations",
        "/v1/audio/speech",
        "/v1/files",
        "/v1/fine_tuning/jobs",
        "/v1/batches",
        "/v1/assistants",
        "/v1/moderations",
        "/v1/completions",
        "/v1/chat/completions/abc",
        "/v1/teleport",
        "/nowhere",
        "/v2/chat/completions",
    ],
)
async def test_endpoints_not_offered_are_404_unknown_url(client: TestClient, path: str) -> None:
    """Every path this server does not offer (OpenAI endpoints included) is OpenAI's 404 invalid_request_error
    with code unknown_url, naming the endpoint and what is offered; never a 5xx that SDKs would retry."""
    resp = await client.post(path, json={})
    assert resp.status == 404
    err = assert_openai_error(await resp.json())
    assert err["type"] == "invalid_request_error" and err["code"] == "unknown_url"
    assert f"POST {path}" in err["message"] and "POST /v1/chat/completions" in err["message"]


async def test_wrong_method_is_405_openai_style(client: TestClient) -> None:
    """A wrong HTTP method is 405 in the OpenAI shape."""
    resp = await client.delete("/v1/models")
    assert resp.status == 405
    assert assert_openai_error(await resp.json())["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("raw", "code"), [(b"", "invalid_body"), (b"{nope", "invalid_json"), (b"[1]", "invalid_body")]
)
async def test_body_that_is_not_a_json_object_is_400(client: TestClient, raw: bytes, code: str) -> None:
    """Empty, broken or non-object bodies give 400."""
    resp = await client.post("/v1/chat/completions", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 400 and assert_openai_error(await resp.json())["code"] == code


async def test_wrong_type_names_the_param(client: TestClient) -> None:
    """A type error is a 400 whose param is the dotted path."""
    resp = await client.post(
        "/v1/chat/completions", json={**BODY, "messages": [{"role": "user", "content": 1}]}
    )
    assert resp.status == 400
    assert assert_openai_error(await resp.json())["param"] == "messages.0.content"


@pytest.mark.parametrize("settings_overrides", [{"max_request_bytes": 2048}])
async def test_too_large_body_is_413(client: TestClient) -> None:
    """A body over MAX_REQUEST_BYTES is 413 request_too_large."""
    big = {**BODY, "messages": [{"role": "user", "content": "x" * 4096}]}
    resp = await client.post("/v1/chat/completions", json=big)
    assert resp.status == 413
    assert assert_openai_error(await resp.json())["code"] == "request_too_large"


async def test_unknown_model_lists_valid_ids(ready: TestClient) -> None:
    """An unknown model is 404 listing the worker's model ids; prefixes are accepted."""
    resp = await ready.post("/v1/chat/completions", json={**BODY, "model": "gpt-4"})
    assert resp.status == 404
    err = assert_openai_error(await resp.json())
    assert (
        err["param"] == "model"
        and "gemini-2.5-pro" in err["message"]
        and "gemini-2.5-flash" in err["message"]
    )
    ok = await ready.post("/v1/chat/completions", json={**BODY, "model": "aistudio/gemini-2.5-flash"})
    assert ok.status == 200 and (await ok.json())["model"] == "gemini-2.5-flash"
    missing = await ready.get("/v1/models/gpt-4")
    assert missing.status == 404


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "model_aliases": "claude-sonnet-4-5=gemini-2.5-pro, claude-haiku-*=gemini-2.5-flash, claude-*=gemini-2.5-pro"
        }
    ],
)
async def test_model_aliases_map_hard_coded_names_exactly_first_then_by_pattern(
    ready: TestClient, fake: Any
) -> None:
    """MODEL_ALIASES: an exact alias wins, then the first matching ``*`` pattern; the job runs on the target,
    which the answer names; an unknown name without an alias is still 404."""
    for asked, runs in [
        ("claude-sonnet-4-5", "gemini-2.5-pro"),
        ("claude-haiku-4-5-20251001", "gemini-2.5-flash"),
        ("claude-opus-4-1", "gemini-2.5-pro"),
        ("gemini-2.5-flash", "gemini-2.5-flash"),
    ]:
        resp = await ready.post("/v1/chat/completions", json={**BODY, "model": asked})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["model"] == runs
        assert fake.submitted[-1].job.model == runs
    missing = await ready.post("/v1/chat/completions", json={**BODY, "model": "gpt-4"})
    assert missing.status == 404


@pytest.mark.parametrize("value", ["claude", "=gemini-2.5-pro", "claude-x="])
def test_a_malformed_model_alias_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="MODEL_ALIASES"):
        make_settings(Path("/tmp"), model_aliases=value)


async def test_unexpected_failure_is_a_500_without_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any unexpected exception becomes a 500 OpenAI error naming the request id."""
    from api_server.engine import Engine

    async def explode(self: Any, req_id: str, body: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Engine, "prepare", explode)
    resp = await client.post("/v1/chat/completions", json=BODY, headers={"x-request-id": "boom-1"})
    assert resp.status == 500
    err = assert_openai_error(await resp.json())
    assert resp.headers["x-request-id"] in err["message"]
    assert "secret" not in err["message"] and "Traceback" not in err["message"]


async def test_request_ids_are_the_servers_and_a_sane_client_id_is_echoed_apart(client: TestClient) -> None:
    """x-request-id is always the server's own, unique id; a sane client x-request-id comes back in
    x-client-request-id, an insane one not at all."""
    kept = (await client.get("/v1/queue", headers={"x-request-id": "abc-123"})).headers
    assert kept["x-request-id"].startswith("req_") and kept["x-client-request-id"] == "abc-123"
    again = (await client.get("/v1/queue", headers={"x-request-id": "abc-123"})).headers
    assert again["x-request-id"] != kept["x-request-id"]
    insane = (await client.get("/v1/queue", headers={"x-request-id": "bad id; with spaces"})).headers
    assert insane["x-request-id"].startswith("req_") and "x-client-request-id" not in insane


async def test_job_carries_every_translated_parameter(ready: TestClient, fake: FakeWorker) -> None:
    """The Job holds the resolved model, parameters, smallest output limit and the messages as given."""
    body = {
        **BODY,
        "model": "models/gemini-2.5-pro",
        "temperature": 0.3,
        "top_p": 0.5,
        "max_tokens": 90,
        "max_completion_tokens": 80,
        "stop": "END",
        "reasoning_effort": "8192",
        "seed": 1,
        "tools": [{"type": "google_search"}],
        "tool_choice": "auto",
        "response_format": {"type": "text"},
        "mcp_endpoint": "http://mcp",
        "user": "ignored",
    }
    assert (await ready.post("/v1/chat/completions", json=body)).status == 200
    job = fake.submitted[0].job
    assert (job.model, job.temperature, job.top_p, job.max_output_tokens, job.stop, job.reasoning_effort) == (
        "gemini-2.5-pro",
        0.3,
        0.5,
        80,
        ["END"],
        8192,
    )
    assert job.tools == [{"type": "google_search"}] and job.tool_choice == "auto"
    assert job.messages == BODY["messages"] and job.stream is False


async def test_info_describes_the_server(ready: TestClient) -> None:
    """/api/info reports version, base URL, endpoints, model, queue, keys, capture and demo mode."""
    info = await (await ready.get("/api/info")).json()
    assert info["version"] == "0.1.0" and info["base_url"].endswith("/v1")
    assert "POST /v1/chat/completions" in info["endpoints"]
    assert info["current_model"] == "gemini-2.5-pro" and info["queue_length"] == 0
    assert info["api_key_required"] is False and info["capture_mode"] == "dom" and info["demo_mode"] is False


@pytest.mark.parametrize("settings_overrides", [{"helper_endpoint": "http://127.0.0.1:9/getStreamResponse"}])
async def test_info_and_health_name_the_helper_tier(ready: TestClient) -> None:
    """STREAM_PORT=0 with HELPER_ENDPOINT: the helper is the capture mode, the DOM its fallback."""
    assert (await (await ready.get("/api/info")).json())["capture_mode"] == "helper"
    health = await (await ready.get("/health")).json()
    assert "stream helper" in health["components"]["stream_proxy"]["message"]


@pytest.mark.parametrize("settings_overrides", [{"aistudio_resolve": "aistudio.google.com=127.0.0.1:9"}])
async def test_demo_mode_changes_the_fingerprint(ready: TestClient) -> None:
    """In demo mode the fingerprint says sim and /api/info says demo."""
    done = await (await ready.post("/v1/chat/completions", json=BODY)).json()
    assert done["system_fingerprint"] == "fp_aistudio_sim_0.1.0"
    assert (await (await ready.get("/api/info")).json())["demo_mode"] is True


async def test_health_is_ok_when_everything_is(ready: TestClient) -> None:
    """Worker ready and the stream proxy disabled: 200 naming each component."""
    resp = await ready.get("/health")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "ok"
    assert (
        body["components"]["worker"]["state"] == "ready"
        and body["components"]["stream_proxy"]["state"] == "disabled"
    )


@pytest.mark.parametrize("settings_overrides", [{"stream_port": 3120}])
async def test_health_is_503_when_the_stream_proxy_is_down(ready: TestClient) -> None:
    """With interception on and no proxy socket, /health is 503 naming the proxy."""
    resp = await ready.get("/health")
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert (await resp.json())["components"]["stream_proxy"]["state"] == "down"


@pytest.mark.parametrize("settings_overrides", [{"stream_port": 3120}])
async def test_health_pings_the_stream_proxy(ready: TestClient, settings: Any) -> None:
    """A proxy answering ping on proxy.sock counts as healthy."""

    from shared import channel

    async def idle(conn: channel.Connection) -> None:
        async for _ in conn:
            pass

    server = await channel.serve(settings.proxy_socket, idle, process="stream_proxy", version="t")
    try:
        resp = await ready.get("/health")
        assert resp.status == 200 and (await resp.json())["components"]["stream_proxy"]["state"] == "ok"
    finally:
        server.close()


async def test_stream_sends_nothing_while_queued(ready: TestClient, fake: FakeWorker) -> None:
    """A streaming request that has to wait sends nothing (no headers, no keep-alive) until its answer
    starts: the first bytes of the body are the role chunk."""
    gate = asyncio.Event()
    fake.script = [Wait(gate), content("a"), finish()]
    first = asyncio.ensure_future(ready.post("/v1/chat/completions", json=BODY))
    await fake.wait_submitted(1)
    second = asyncio.ensure_future(ready.post("/v1/chat/completions", json={**BODY, "stream": True}))
    await ready.app[QUEUE].wait_for(lambda q: len(q) == 2)  # type: ignore[index]
    assert ready.app[QUEUE].snapshot()[1]["state"] == "queued"  # type: ignore[index]
    assert not second.done()
    gate.set()
    resp = await second
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    body = (await resp.read()).decode()
    assert body.startswith('data: {"id"') and '"role":"assistant"' in body.split("\n\n")[0]
    assert ": keep-alive" not in body and body.endswith("data: [DONE]\n\n") and (await first).status == 200


@pytest.mark.parametrize(
    ("kind", "status", "retry"),
    [
        ("quota", 429, "120"),
        ("rate_limit", 429, "120"),
        ("permission", 403, None),
        ("login_required", 503, "120"),
        ("upstream", 502, None),
        ("timeout", 504, None),
    ],
)
async def test_stream_failure_before_output_has_its_real_status(
    ready: TestClient, fake: FakeWorker, kind: str, status: int, retry: str | None
) -> None:
    """A streamed request that fails before any output is a plain JSON error with its status and Retry-After,
    exactly as when not streaming."""
    fake.script = [error(kind, "it failed", retry_after=120 if retry else None)]
    resp = await ready.post("/v1/chat/completions", json={**BODY, "stream": True})
    assert resp.status == status and resp.content_type == "application/json"
    assert resp.headers.get("Retry-After") == retry
    assert assert_openai_error(await resp.json())["message"] == "it failed"


async def test_stream_cancelled_before_output_is_a_plain_error(ready: TestClient, fake: FakeWorker) -> None:
    """A cancel before the answer started is a JSON error response, not a stream."""
    fake.script = [HANG]
    post = asyncio.ensure_future(ready.post("/v1/chat/completions", json={**BODY, "stream": True}))
    await fake.wait_submitted(1)
    await ready.post(f"/v1/cancel/{ready.app[QUEUE].snapshot()[0]['id']}")  # type: ignore[index]
    resp = await post
    assert resp.status == 499 and assert_openai_error(await resp.json())["code"] == "request_cancelled"


async def test_stream_error_after_output_is_an_error_event(ready: TestClient, fake: FakeWorker) -> None:
    """An error after output started is an in-band error event, then [DONE]."""
    fake.script = [content("partial"), error("quota", "gone")]
    resp = await ready.post("/v1/chat/completions", json={**BODY, "stream": True})
    assert resp.status == 200
    events = [block for block in (await resp.read()).decode().split("\n\n") if block]
    assert "partial" in events[0] and '"insufficient_quota"' in events[-2] and events[-1] == "data: [DONE]"


@pytest.mark.parametrize("settings_overrides", [{"stream_header_hold_s": 0.3}])
async def test_stream_headers_go_out_when_the_hold_ends(ready: TestClient, fake: FakeWorker) -> None:
    """Past STREAM_HEADER_HOLD_S without an answer event the headers go out with a keep-alive comment, and a
    later failure is in-band."""
    gate = asyncio.Event()
    fake.script = [Wait(gate), error("rate_limit", "slow down")]
    resp = await ready.post("/v1/chat/completions", json={**BODY, "stream": True})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    assert await resp.content.readline() == b": keep-alive\n"
    gate.set()
    events = [block for block in (await resp.read()).decode().split("\n\n") if block]
    assert "slow down" in events[-2] and events[-1] == "data: [DONE]"


async def test_openapi_document_describes_the_chat_request(client: TestClient) -> None:
    """/openapi.json is OpenAPI 3.0 with the pydantic chat schema in components."""
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.0")
    assert "/v1/chat/completions" in doc["paths"]
    assert "messages" in doc["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    message = doc["components"]["schemas"]["ChatCompletion"]["properties"]["choices"]["items"]["properties"][
        "message"
    ]
    assert {"annotations", "grounding"} <= set(message["properties"])


def test_app_factory_has_no_string_keys() -> None:
    """State lives under AppKeys only."""
    from api_server.app import create_app
    from shared.settings import Settings

    app = create_app(Settings(stream_port=0), connect_worker=False, fetch_remote=False)
    assert all(isinstance(k, web.AppKey) for k in app)


@pytest.mark.parametrize(
    ("err", "seconds"),
    [
        ("QuotaExceeded", "3600"),
        ("RateLimited", "60"),
        ("QueueFull", "5"),
        ("WorkerUnavailable", "30"),
        ("LoginRequired", "60"),
    ],
)
def test_429_and_503_always_carry_retry_after(err: str, seconds: str) -> None:
    """Errors without their own Retry-After get the documented default."""
    from api_server.middleware import error_response
    from shared import errors

    resp = error_response(getattr(errors, err)("x"))
    assert resp.headers["Retry-After"] == seconds
    assert "Retry-After" not in error_response(errors.InvalidRequest("x")).headers


@pytest.mark.parametrize("stream", [False, True])
async def test_two_requests_with_one_client_id_each_get_their_own_answer(
    ready: TestClient, fake: FakeWorker, stream: bool
) -> None:
    """Two requests sent at once with the same x-request-id are two requests: each gets its own answer, neither
    waits for the other beyond its turn, and each has its own server id."""
    fake.script_fn = lambda s: [content(f"answer to {s.job.messages[-1]['content']}"), finish()]
    bodies = [
        {**BODY, "stream": stream, "messages": [{"role": "user", "content": who}]} for who in ("A", "B")
    ]
    responses = await asyncio.gather(
        *(ready.post("/v1/chat/completions", json=b, headers={"x-request-id": "same"}) for b in bodies)
    )
    texts = [await r.text() for r in responses]
    assert [r.status for r in responses] == [200, 200]
    assert "answer to A" in texts[0] and "answer to B" not in texts[0]
    assert "answer to B" in texts[1] and "answer to A" not in texts[1]
    ids = {r.headers["x-request-id"] for r in responses}
    assert len(ids) == 2 and ids == {s.id for s in fake.submitted}
    assert {r.headers["x-client-request-id"] for r in responses} == {"same"}


async def test_shutdown_ends_an_open_stream_with_an_error_event(ready: TestClient, fake: FakeWorker) -> None:
    """On shutdown a running stream gets a 503 error event and [DONE]."""
    from api_server.lifecycle import drain

    fake.script = [content("partial"), HANG]
    resp = await ready.post("/v1/chat/completions", json={**BODY, "stream": True})
    await resp.content.readuntil(b"partial")
    await drain(ready.app)
    rest = (await resp.read()).decode()
    assert '"shutting_down"' in rest and rest.endswith("data: [DONE]\n\n")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_body_that_is_not_json_is_415(
    ready: TestClient, fake: FakeWorker, content_type: str | None
) -> None:
    """Bodies a browser may send cross-site without a preflight (text/plain, forms) or without any type are
    refused with 415 before anything runs, even when their text is JSON."""
    import orjson

    headers = {"Content-Type": content_type} if content_type else {}
    resp = await ready.post(
        "/v1/chat/completions", data=orjson.dumps(BODY), headers=headers, skip_auto_headers=["Content-Type"]
    )
    assert resp.status == 415
    assert assert_openai_error(await resp.json())["code"] == "unsupported_media_type" and not fake.submitted
    ok = await ready.post(
        "/v1/chat/completions",
        data=orjson.dumps(BODY),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status == 200


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 421),
        ("evil.example:2048", 421),
        ("127.0.0.1.evil.example", 421),
        ("localhost:2048", 200),
        ("127.0.0.1:9", 200),
        ("[::1]:2048", 200),
        ("LOCALHOST", 200),
    ],
)
async def test_only_allowed_host_names_are_answered(ready: TestClient, host: str, status: int) -> None:
    """A Host header that is not a loopback name or API_HOST is 421 (a DNS-rebinding page cannot read answers)."""
    resp = await ready.get("/v1/models", headers={"Host": host})
    assert resp.status == status
    if status == 421:
        assert assert_openai_error(await resp.json())["code"] == "host_not_allowed"


@pytest.mark.parametrize("settings_overrides", [{"allowed_hosts": "proxy.internal, [fd00::1]"}])
async def test_allowed_hosts_adds_names(ready: TestClient) -> None:
    """ALLOWED_HOSTS adds names; the loopback names stay allowed."""
    for host, status in (
        ("proxy.internal:2048", 200),
        ("[fd00::1]:2048", 200),
        ("localhost", 200),
        ("other.internal", 421),
    ):
        assert (await ready.get("/v1/models", headers={"Host": host})).status == status, host
