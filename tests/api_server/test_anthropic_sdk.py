"""The official ``anthropic`` Python SDK against the API server and the fake worker: messages whole and
streamed, thinking, tool use and the tool loop, images, count_tokens, models, and typed errors."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestClient

from tests.api_server.fake_worker import FakeWorker, content, error, finish, reasoning, tool_call, usage

MODEL = "gemini-2.5-pro"
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
async def sdk(ready: TestClient) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=str(ready.make_url("")).rstrip("/"), api_key="unused", max_retries=0
    ) as client:
        yield client


def last_job(fake: FakeWorker) -> Any:
    return fake.submitted[-1].job


async def test_a_message_comes_back_with_text_usage_and_end_turn(
    sdk: anthropic.AsyncAnthropic, fake: FakeWorker
):
    fake.script = [content("Hello "), content("there."), usage(prompt=7, completion=3), finish("stop")]
    msg = await sdk.messages.create(
        model=MODEL,
        max_tokens=256,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hi"}],
        stop_sequences=["END"],
        metadata={"user_id": "u1"},
        extra_body={"temperature": 0.5, "top_k": 40},  # the SDK no longer offers them as arguments
    )
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert [(b.type, getattr(b, "text", None)) for b in msg.content] == [("text", "Hello there.")]
    assert msg.stop_reason == "end_turn" and msg.model == MODEL
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (7, 3)
    job = last_job(fake)
    assert job.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (job.max_output_tokens, job.stop, job.temperature) == (256, ["END"], 0.5)


async def test_a_stream_with_thinking_and_a_tool_call_is_assembled_by_the_sdk(
    sdk: anthropic.AsyncAnthropic, fake: FakeWorker
):
    fake.script = [
        reasoning("Let me look "),
        reasoning("it up."),
        content("Checking."),
        tool_call("get_weather", {"city": "Paris"}),
        finish("stop"),
    ]
    async with sdk.messages.stream(
        model=MODEL,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        kinds = [event.type async for event in stream]
        msg = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    thinking, text, call = msg.content
    assert thinking.thinking == "Let me look it up." and thinking.signature
    assert text.text == "Checking."
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"}) and call.id.startswith("toolu_")
    assert msg.stop_reason == "tool_use"
    job = last_job(fake)
    assert job.reasoning_effort == 2048
    assert job.tools[0]["function"]["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }


async def test_a_tool_loop_sends_the_call_and_its_result_back_as_a_paired_turn(
    sdk: anthropic.AsyncAnthropic, fake: FakeWorker
):
    fake.script = [content("It is sunny."), finish("stop")]
    msg = await sdk.messages.create(
        model=MODEL,
        max_tokens=512,
        tools=[WEATHER],
        tool_choice={"type": "auto"},
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "...", "signature": "sig"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "sunny"}],
                    },
                    {"type": "text", "text": "And so?"},
                ],
            },
        ],
    )
    assert msg.content[0].text == "It is sunny."
    sent = last_job(fake).messages
    assert sent[1]["tool_calls"][0]["id"] == "toolu_1"
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert sent[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    assert sent[3] == {"role": "user", "content": [{"type": "text", "text": "And so?"}]}


async def test_an_image_block_reaches_the_worker_as_an_attachment(
    sdk: anthropic.AsyncAnthropic, fake: FakeWorker
):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
    fake.script = [content("A picture."), finish("stop")]
    await sdk.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                    {"type": "text", "text": "What is it?"},
                ],
            }
        ],
    )
    job = last_job(fake)
    assert [a.mime_type for a in job.attachments] == ["image/png"]


async def test_count_tokens_and_the_model_list_in_anthropic_s_shape(
    sdk: anthropic.AsyncAnthropic, fake: FakeWorker
):
    counted = await sdk.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert counted.input_tokens > 0
    page = await sdk.models.list()
    assert MODEL in [m.id for m in page.data] and all(m.type == "model" for m in page.data)
    assert (await sdk.models.retrieve(MODEL)).id == MODEL


async def test_errors_are_anthropic_s_typed_errors(sdk: anthropic.AsyncAnthropic, fake: FakeWorker):
    with pytest.raises(anthropic.NotFoundError) as missing:
        await sdk.messages.create(
            model="claude-nope", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        await sdk.messages.create(model=MODEL, max_tokens=0, messages=[{"role": "user", "content": "x"}])
    assert bad.value.body["error"]["type"] == "invalid_request_error" and "max_tokens" in str(bad.value)
    fake.script = [error("rate_limit", "Too many requests", status=429, retry_after=7)]
    with pytest.raises(anthropic.RateLimitError) as limited:
        await sdk.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert limited.value.response.headers["retry-after"] == "7"


async def test_system_messages_among_the_others_join_the_system_prompt(ready: TestClient, fake: FakeWorker):
    """Claude Code sends messages with the role ``system`` besides the top-level ``system``: their text joins
    the instructions instead of being refused."""
    body = {
        "model": MODEL,
        "max_tokens": 50,
        "system": "First.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": [{"type": "text", "text": "Second."}]},
        ],
        "context_management": {"edits": []},
    }
    resp = await ready.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert resp.status == 200, await resp.text()
    assert last_job(fake).messages[0] == {"role": "system", "content": "First.\n\nSecond."}
    bad = await ready.post("/v1/messages", json={**body, "messages": [{"role": "tool", "content": "x"}]})
    err = await bad.json()
    assert bad.status == 400 and err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert "messages.0.role" in err["error"]["message"]
