"""The official openai SDK (async and sync) against the running server and the fake worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from tests.api_server.fake_worker import (
    FakeWorker,
    content,
    error,
    finish,
    grounding,
    reasoning,
    tool_call,
    usage,
)

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
async def sdk(ready: TestClient) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=str(ready.make_url("/v1")), api_key="unused", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
def sync_sdk(ready: TestClient) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=str(ready.make_url("/v1")), api_key="unused", max_retries=0)
    yield client
    client.close()


async def test_models_are_listed_with_extra_fields(sdk: openai.AsyncOpenAI) -> None:
    """models.list() returns the worker's models; retrieve() finds one; extras are present."""
    models = [m async for m in sdk.models.list()]
    assert [m.id for m in models] == ["gemini-2.5-pro", "gemini-2.5-flash"]
    assert all(m.object == "model" and m.owned_by == "ai_studio" for m in models)
    one = await sdk.models.retrieve("gemini-2.5-flash")
    extra = one.model_extra or {}
    assert extra["display_name"] == "Gemini 2.5 Flash" and extra["output_token_limit"] == 65536
    assert extra["thinking"] == "toggle"


async def test_non_stream_answer_with_reasoning_and_wire_usage(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    """A whole completion has content, separate reasoning_content and the wire usage."""
    fake.script = [reasoning("Thinking..."), content("Hello!"), usage(12, 5, 3), finish("STOP")]
    raw = await sdk.chat.completions.with_raw_response.create(
        model="models/gemini-2.5-pro", messages=MESSAGES
    )
    assert raw.headers["x-usage-source"] == "wire" and raw.headers["x-request-id"]
    done = raw.parse()
    msg = done.choices[0].message
    assert msg.content == "Hello!" and (msg.model_extra or {})["reasoning_content"] == "Thinking..."
    assert done.choices[0].finish_reason == "stop" and done.model == "gemini-2.5-pro"
    assert done.system_fingerprint == "fp_aistudio_proxy_0.1.0"
    # completion_tokens include the 3 reasoning tokens (the wire counts them apart); total = prompt + completion
    assert done.usage is not None and done.usage.prompt_tokens == 12 and done.usage.completion_tokens == 8
    assert done.usage.total_tokens == 20 and done.usage.completion_tokens_details is not None
    assert done.usage.completion_tokens_details.reasoning_tokens == 3


async def test_usage_is_estimated_when_the_wire_has_none(sdk: openai.AsyncOpenAI, fake: FakeWorker) -> None:
    """Without wire usage the numbers are estimated and labelled so."""
    fake.script = [content("Hello there, friend."), finish()]
    raw = await sdk.chat.completions.with_raw_response.create(model="gemini-2.5-pro", messages=MESSAGES)
    assert raw.headers["x-usage-source"] == "estimate"
    assert raw.parse().usage.completion_tokens > 0  # type: ignore[union-attr]


@pytest.mark.parametrize("include_usage", [False, True])
async def test_stream_chunks_share_one_id_and_end_with_finish(
    sdk: openai.AsyncOpenAI, fake: FakeWorker, include_usage: bool
) -> None:
    """Streamed chunks: one id, role first, reasoning then content, finish_reason, optional usage chunk."""
    fake.script = [
        reasoning("hmm "),
        reasoning("ok"),
        content("Hel"),
        content("lo"),
        usage(4, 2, 1),
        finish(),
    ]
    options: Any = {"include_usage": True} if include_usage else openai.omit
    stream = await sdk.chat.completions.create(
        model="gemini-2.5-pro", messages=MESSAGES, stream=True, stream_options=options
    )
    chunks = [c async for c in stream]
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    thought = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks if c.choices
    )
    assert text == "Hello" and thought == "hmm ok"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    if include_usage:
        last = chunks[-1].usage
        assert chunks[-1].choices == [] and last is not None and last.completion_tokens == 3
        assert last.total_tokens == 7 and last.completion_tokens_details.reasoning_tokens == 1  # type: ignore[union-attr]
    else:
        assert all(c.usage is None for c in chunks)


async def test_streamed_tool_calls_are_assembled_by_the_sdk(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    """The SDK's stream helper assembles tool_calls deltas into calls with call_ ids."""
    fake.script = [
        tool_call("get_weather", {"city": "Paris"}),
        tool_call("get_weather", {"city": "Oslo"}, "c2"),
        finish(),
    ]
    async with sdk.chat.completions.stream(model="gemini-2.5-pro", messages=MESSAGES, tools=TOOLS) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}, {"city": "Oslo"}]  # type: ignore[union-attr]
    assert calls[0].id.startswith("call_") and len(calls[0].id) == 29 and calls[1].id == "c2"
    assert final.choices[0].finish_reason == "tool_calls"
    assert fake.submitted[0].job.tools == TOOLS


async def test_non_stream_tool_calls_have_null_content(sdk: openai.AsyncOpenAI, fake: FakeWorker) -> None:
    """A tools-only answer has content None and finish_reason tool_calls."""
    fake.script = [tool_call("get_weather", {"city": "Rome"}), finish("stop")]
    done = await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, tools=TOOLS)
    msg = done.choices[0].message
    assert msg.content is None and msg.tool_calls and msg.tool_calls[0].type == "function"
    assert done.choices[0].finish_reason == "tool_calls"


SOURCES = [
    {"uri": "https://example.com/a", "title": "A", "domain": "example.com"},
    {"uri": "https://example.com/b", "title": None, "domain": "example.com"},
]
SEARCH: list[Any] = [{"type": "google_search"}]


async def test_grounding_sources_reach_the_sdk_whole_and_streamed(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    """Grounding events become message.annotations (url_citation) and the grounding extra, in both modes."""
    fake.script = [content("Answer."), grounding(SOURCES[:1], ["q"]), grounding(SOURCES), finish()]
    done = await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, tools=SEARCH)
    msg = done.choices[0].message
    assert [(a.type, a.url_citation.url) for a in msg.annotations or []] == [
        ("url_citation", "https://example.com/a"),
        ("url_citation", "https://example.com/b"),
    ]
    assert (msg.model_extra or {})["grounding"] == {"sources": SOURCES, "queries": ["q"]}

    async with sdk.chat.completions.stream(model="gemini-2.5-pro", messages=MESSAGES, tools=SEARCH) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    streamed = final.choices[0].message
    assert streamed.content == "Answer."
    assert [a.url_citation.title for a in streamed.annotations or []] == ["A", "example.com"]
    assert (streamed.model_extra or {})["grounding"] == {"sources": SOURCES, "queries": ["q"]}


async def test_sdk_raises_typed_errors(sdk: openai.AsyncOpenAI, fake: FakeWorker) -> None:
    """400, 404, 429, 502 and 503 surface as the SDK's typed exceptions."""
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, temperature=5)
    assert bad.value.param == "temperature"  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert "gemini-2.5-pro" in missing.value.message
    fake.script = [error("quota", "quota used up", retry_after=3600)]
    with pytest.raises(openai.RateLimitError):
        await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES)
    fake.script = [error("upstream", "page broke")]
    with pytest.raises(openai.InternalServerError) as upstream:
        await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES)
    assert upstream.value.status_code == 502
    fake.script = [error("unavailable", "worker restarting")]
    with pytest.raises(openai.APIStatusError) as unavailable:
        await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES)
    assert unavailable.value.status_code == 503


@pytest.mark.parametrize("settings_overrides", [{"admin_key": "adm"}])
async def test_sdk_authentication_error_with_a_wrong_key(ready: TestClient) -> None:
    """Once a client key exists, a wrong key raises AuthenticationError; the right one works."""
    made = await (await ready.post("/api/keys", headers={"x-api-key": "adm"})).json()
    base = str(ready.make_url("/v1"))
    async with openai.AsyncOpenAI(base_url=base, api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.models.list()
    async with openai.AsyncOpenAI(base_url=base, api_key=made["key"], max_retries=0) as good:
        assert [m.id async for m in good.models.list()]


async def test_error_in_the_middle_of_a_stream_raises_api_error(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    """An error after the stream started arrives as an error event the SDK raises."""
    fake.script = [content("partial "), error("upstream", "stream broke")]
    stream = await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, stream=True)
    seen = []
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            seen.append(chunk)
    assert "stream broke" in info.value.message
    assert any(c.choices and c.choices[0].delta.content == "partial " for c in seen)


async def test_json_schema_violation_is_502_or_a_final_error_event(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    """A json_schema answer that violates the schema: 502 invalid_json_output, or an error event when streaming."""
    fmt: Any = {
        "type": "json_schema",
        "json_schema": {
            "name": "p",
            "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        },
    }
    fake.script = [content('{"n": "three"}'), finish()]
    with pytest.raises(openai.InternalServerError) as info:
        await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, response_format=fmt)
    assert info.value.status_code == 502 and info.value.code == "invalid_json_output"  # type: ignore[attr-defined]
    stream = await sdk.chat.completions.create(
        model="gemini-2.5-pro", messages=MESSAGES, response_format=fmt, stream=True
    )
    with pytest.raises(openai.APIError, match="schema"):
        async for _ in stream:
            pass
    fake.script = [content('```json\n{"n": 3}\n```'), finish()]
    ok = await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, response_format=fmt)
    assert json.loads(ok.choices[0].message.content or "") == {"n": 3}


async def test_sync_client_in_a_thread(sync_sdk: openai.OpenAI, fake: FakeWorker) -> None:
    """The sync client works too: models, a completion and a stream."""
    fake.script = [content("sync "), content("works"), finish()]

    def run() -> tuple[list[str], str, str]:
        ids = [m.id for m in sync_sdk.models.list()]
        whole = sync_sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES)
        stream = sync_sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return ids, whole.choices[0].message.content or "", streamed

    ids, whole, streamed = await asyncio.to_thread(run)
    assert ids[0] == "gemini-2.5-pro" and whole == "sync works" and streamed == "sync works"
    with pytest.raises(openai.BadRequestError):
        await asyncio.to_thread(sync_sdk.chat.completions.create, model="gemini-2.5-pro", messages=[])


async def test_an_endpoint_not_offered_is_not_retried(ready: TestClient) -> None:
    """The SDK with its default retries raises NotFoundError after one request for an endpoint this server does
    not offer (a 5xx would be retried)."""
    import httpx

    sent: list[str] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request.url.path)

    http = httpx.AsyncClient(event_hooks={"request": [count]})
    client = openai.AsyncOpenAI(
        base_url=str(ready.make_url("/v1")), api_key="unused", max_retries=2, http_client=http
    )
    try:
        with pytest.raises(openai.NotFoundError) as info:
            await client.embeddings.create(model="text-embedding-3-small", input="hi")
    finally:
        await client.close()
    assert info.value.code == "unknown_url" and sent == ["/v1/embeddings"]


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens", "max_output_tokens"])
async def test_output_limit_above_the_models_is_refused(
    sdk: openai.AsyncOpenAI, fake: FakeWorker, name: str
) -> None:
    """Any spelling of the output limit above the model's (65536 for the fake's 2.5 Pro) is a 400 naming the
    parameter and the limit, before anything runs; the limit itself is accepted."""
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, extra_body={name: 65537})
    assert info.value.param == name and info.value.code == "invalid_value"
    assert "at most 65536" in info.value.message and not fake.submitted
    done = await sdk.chat.completions.create(
        model="gemini-2.5-pro", messages=MESSAGES, extra_body={name: 65536}
    )
    assert done.choices[0].message.content and fake.submitted[0].job.max_output_tokens == 65536


async def test_a_prompt_beyond_the_models_input_limit_is_refused_before_the_page(
    ready: TestClient, sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    """A prompt whose estimate is past the model's input_token_limit (with a margin) is OpenAI's 400
    context_length_exceeded naming the limit, and never reaches the worker; one within the limit runs."""
    from api_server.app_keys import WORKER
    from shared import protocol

    fake.models.append(
        protocol.ModelInfo(
            id="tiny-model",
            display_name="Tiny",
            description="",
            thinking="none",
            input_token_limit=1000,
            output_token_limit=100,
        )
    )
    status = await ready.app[WORKER].status()  # type: ignore[index]
    assert "tiny-model" in [m.id for m in status.models]
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(
            model="tiny-model", messages=[{"role": "user", "content": "word " * 1200}]
        )
    assert (info.value.code, info.value.param) == ("context_length_exceeded", "messages")
    assert "maximum context length is 1000 tokens" in info.value.message and not fake.submitted
    fake.script = [content("ok"), finish()]
    done = await sdk.chat.completions.create(
        model="tiny-model", messages=[{"role": "user", "content": "word " * 900}]
    )
    assert done.choices[0].message.content == "ok" and len(fake.submitted) == 1
