"""The official ``openai`` SDK's ``client.responses`` against the API server and the fake worker: output items,
the typed event stream with its sequence numbers, a function tool loop, ``text.format``, reasoning summaries,
stored responses (``previous_response_id``, retrieve, delete, input items) and keys that see only their own."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from shared.settings import Settings
from tests.api_server.fake_worker import FakeWorker, content, error, finish, reasoning, tool_call, usage

MODEL = "gemini-2.5-pro"
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture
async def sdk(ready: TestClient) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=str(ready.make_url("/v1")), api_key="unused", max_retries=0) as c:
        yield c


def last_job(fake: FakeWorker) -> Any:
    return fake.submitted[-1].job


async def test_a_response_has_a_message_item_usage_and_the_request_echoed(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    fake.script = [content("Hello "), content("there."), usage(prompt=7, completion=3), finish("stop")]
    resp = await sdk.responses.create(
        model=MODEL,
        instructions="Be brief.",
        input="Hi",
        temperature=0.5,
        max_output_tokens=256,
        metadata={"k": "v"},
        prompt_cache_key="abc",
        include=["reasoning.encrypted_content"],
    )
    assert resp.id.startswith("resp_") and resp.object == "response" and resp.status == "completed"
    assert resp.output_text == "Hello there."
    [item] = resp.output
    assert item.type == "message" and item.id.startswith("msg_") and item.role == "assistant"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (7, 3, 10)
    assert resp.usage.output_tokens_details.reasoning_tokens == 0
    assert resp.usage.input_tokens_details.cached_tokens == 0
    assert (resp.instructions, resp.metadata, resp.temperature, resp.model) == (
        "Be brief.",
        {"k": "v"},
        0.5,
        MODEL,
    )
    job = last_job(fake)
    assert job.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (job.max_output_tokens, job.temperature) == (256, 0.5)


async def test_input_items_become_the_conversation(sdk: openai.AsyncOpenAI, fake: FakeWorker) -> None:
    fake.script = [content("ok"), finish()]
    image = "data:image/png;base64,iVBORw0KGgo="
    await sdk.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "Rules."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Look"},
                    {"type": "input_image", "image_url": image, "detail": "auto"},
                ],
            },
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Seen."}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_file",
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JVBERi0=",
                    }
                ],
            },
        ],
        tools=[WEATHER, {"type": "namespace", "name": "ns"}, {"type": "web_search_preview"}],  # type: ignore[list-item]
    )
    job = last_job(fake)
    roles = [m["role"] for m in job.messages]
    assert roles == ["developer", "user", "assistant", "tool", "user"]
    assert job.messages[2]["content"] == "Seen." and job.messages[2]["tool_calls"][0]["id"] == "c1"
    assert job.messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    assert [t["function"]["name"] for t in job.tools] == ["get_weather", "googleSearch"]


async def test_a_stream_sends_typed_events_in_order_with_sequence_numbers(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    fake.script = [
        reasoning("Let me "),
        reasoning("think."),
        content("Checking."),
        tool_call("get_weather", {"city": "Paris"}),
        usage(prompt=5, completion=9, reasoning_tokens=4),
        finish("stop"),
    ]
    stream = await sdk.responses.create(
        model=MODEL,
        input="Weather in Paris?",
        tools=[WEATHER],
        reasoning={"effort": "low", "summary": "auto"},
        stream=True,
    )
    events = [e async for e in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1].response  # type: ignore[union-attr]
    assert [i.type for i in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[0].summary[0].text == "Let me think."  # type: ignore[union-attr]
    call = final.output[2]
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.id.startswith("fc_") and call.call_id  # type: ignore[union-attr]
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 4
    assert last_job(fake).reasoning_effort == "low"


async def test_the_sdk_stream_helper_assembles_the_response(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    fake.script = [content("Hel"), content("lo"), finish()]
    async with sdk.responses.stream(model=MODEL, input="Hi") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert deltas == ["Hel", "lo"] and final.output_text == "Hello"


async def test_a_function_tool_loop_with_previous_response_id(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    fake.script = [tool_call("get_weather", {"city": "Paris"}), finish("stop")]
    first = await sdk.responses.create(
        model=MODEL, input="Weather in Paris?", tools=[WEATHER], tool_choice="required"
    )
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    fake.script = [content("Sunny in Paris."), finish()]
    second = await sdk.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'}],
        tools=[WEATHER],
    )
    assert second.output_text == "Sunny in Paris." and second.previous_response_id == first.id
    messages = last_job(fake).messages
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id == messages[2]["tool_call_id"]


async def test_text_format_json_schema_is_passed_and_checked(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    fmt: Any = {"format": {"type": "json_schema", "name": "num", "schema": schema, "strict": True}}
    fake.script = [content('{"n": 3}'), finish()]
    resp = await sdk.responses.create(model=MODEL, input="Three", text=fmt)
    assert json.loads(resp.output_text) == {"n": 3} and resp.text.format.type == "json_schema"  # type: ignore[union-attr]
    assert last_job(fake).response_format["json_schema"]["schema"] == schema
    fake.script = [content('{"n": "three"}'), finish()]
    with pytest.raises(openai.InternalServerError) as info:
        await sdk.responses.create(model=MODEL, input="Three", text=fmt)
    assert info.value.status_code == 502


async def test_a_cut_answer_is_incomplete(sdk: openai.AsyncOpenAI, fake: FakeWorker) -> None:
    fake.script = [content("Once upon"), finish("length")]
    resp = await sdk.responses.create(model=MODEL, input="A story", max_output_tokens=16)
    assert resp.status == "incomplete" and resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    fake.script = [content("Once upon"), finish("length")]
    stream = await sdk.responses.create(model=MODEL, input="A story", max_output_tokens=16, stream=True)
    assert [e.type async for e in stream][-1] == "response.incomplete"


async def test_errors_are_typed_before_and_failed_after_the_stream_started(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.responses.create(model=MODEL, input=[{"type": "bogus"}])  # type: ignore[list-item]
    assert bad.value.param == "input.0.type"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as no_tools:  # a call that cannot be made: no function
        await sdk.responses.create(model=MODEL, input="Hi", tool_choice="required")
    assert no_tools.value.param == "tool_choice"  # type: ignore[attr-defined]
    search_only: Any = [{"type": "web_search"}]
    with pytest.raises(openai.BadRequestError):
        await sdk.responses.create(model=MODEL, input="Hi", tools=search_only, tool_choice="required")
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.create(model=MODEL, input="Hi", previous_response_id="resp_missing")
    fake.script = [error("upstream", "page broke")]
    with pytest.raises(openai.InternalServerError):
        await sdk.responses.create(model=MODEL, input="Hi", stream=True)
    fake.script = [content("partial "), error("upstream", "stream broke")]
    stream = await sdk.responses.create(model=MODEL, input="Hi", stream=True)
    events = [e async for e in stream]
    assert events[-1].type == "response.failed"
    assert "stream broke" in events[-1].response.error.message  # type: ignore[union-attr]


async def test_stored_responses_can_be_retrieved_listed_and_deleted(
    sdk: openai.AsyncOpenAI, fake: FakeWorker, settings: Settings
) -> None:
    fake.script = [content("Stored."), finish()]
    resp = await sdk.responses.create(model=MODEL, input=[{"role": "user", "content": "Keep this"}])
    again = await sdk.responses.retrieve(resp.id)
    assert again.id == resp.id and again.output_text == "Stored."
    items = await sdk.responses.input_items.list(resp.id)
    assert [(i.type, i.role) for i in items.data] == [("message", "user")]  # type: ignore[union-attr]
    await sdk.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(resp.id)
    fake.script = [content("Not stored."), finish()]
    gone = await sdk.responses.create(model=MODEL, input="Forget", store=False)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(gone.id)
    db = settings.data_dir / "responses.sqlite3"
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(settings.data_dir).st_mode) == 0o700


@pytest.mark.parametrize("settings_overrides", [{"admin_key": "adm"}])
async def test_a_client_key_sees_only_its_own_responses(ready: TestClient, fake: FakeWorker) -> None:
    base = str(ready.make_url("/v1"))
    keys = [(await (await ready.post("/api/keys", headers={"x-api-key": "adm"})).json())["key"] for _ in "ab"]
    async with (
        openai.AsyncOpenAI(base_url=base, api_key=keys[0], max_retries=0) as alice,
        openai.AsyncOpenAI(base_url=base, api_key=keys[1], max_retries=0) as bob,
    ):
        fake.script = [content("Alice's."), finish()]
        mine = await alice.responses.create(model=MODEL, input="Mine")
        assert (await alice.responses.retrieve(mine.id)).output_text == "Alice's."
        with pytest.raises(openai.NotFoundError):
            await bob.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            await bob.responses.input_items.list(mine.id)
        with pytest.raises(openai.NotFoundError):
            await bob.responses.delete(mine.id)
        with pytest.raises(openai.NotFoundError):
            await bob.responses.create(model=MODEL, input="Steal", previous_response_id=mine.id)
        assert (await alice.responses.retrieve(mine.id)).id == mine.id
