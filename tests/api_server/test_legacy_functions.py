"""The deprecated ``functions`` / ``function_call`` parameters, through the official openai SDK: mapped to
tools for the worker, answered with ``message.function_call`` and ``finish_reason: "function_call"``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from tests.api_server.fake_worker import FakeWorker, content, finish, tool_call

MESSAGES: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def sdk(ready: TestClient) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=str(ready.make_url("/v1")), api_key="unused", max_retries=0)
    yield client
    await client.close()


async def test_functions_become_tools_and_the_answer_is_a_function_call(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    """The worker gets the functions as function tools; the client gets message.function_call, no tool_calls,
    finish_reason function_call."""
    fake.script = [tool_call("get_weather", {"city": "Paris"}), finish("stop")]
    done = await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, functions=[WEATHER])
    choice = done.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.tool_calls is None
    assert choice.message.content is None and choice.message.function_call is not None
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == {"city": "Paris"}
    job = fake.submitted[0].job
    assert job.tools == [{"type": "function", "function": WEATHER}] and job.tool_choice is None


async def test_streamed_function_call_is_a_function_call_delta(
    sdk: openai.AsyncOpenAI, fake: FakeWorker
) -> None:
    """Streamed: the call arrives as delta.function_call (name and arguments), then finish_reason
    function_call; a second call from the model is dropped (the legacy API has one)."""
    fake.script = [
        tool_call("get_weather", {"city": "Paris"}),
        tool_call("get_weather", {"city": "Oslo"}),
        finish(),
    ]
    stream = await sdk.chat.completions.create(
        model="gemini-2.5-pro", messages=MESSAGES, functions=[WEATHER], stream=True
    )
    chunks = [c async for c in stream]
    calls = [
        c.choices[0].delta.function_call for c in chunks if c.choices and c.choices[0].delta.function_call
    ]
    assert [(f.name, json.loads(f.arguments or "")) for f in calls] == [("get_weather", {"city": "Paris"})]
    assert all(c.choices[0].delta.tool_calls is None for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "function_call"
    ]


async def test_a_text_answer_finishes_with_stop(sdk: openai.AsyncOpenAI, fake: FakeWorker) -> None:
    """Without a call the answer is plain text with finish_reason stop."""
    fake.script = [content("Sunny."), finish()]
    done = await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, functions=[WEATHER])
    assert done.choices[0].finish_reason == "stop" and done.choices[0].message.content == "Sunny."
    assert done.choices[0].message.function_call is None


@pytest.mark.parametrize(
    ("function_call", "tools", "tool_choice"),
    [
        ("auto", [{"type": "function", "function": WEATHER}], "auto"),
        ("none", None, "none"),
        (
            {"name": "get_weather"},
            [{"type": "function", "function": WEATHER}],
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
async def test_function_call_becomes_tool_choice(
    sdk: openai.AsyncOpenAI, fake: FakeWorker, function_call: Any, tools: Any, tool_choice: Any
) -> None:
    """function_call "auto", "none" (no function declared at all) and a named one map onto tool_choice."""
    fake.script = [tool_call("get_weather", {"city": "Paris"}), finish()]
    await sdk.chat.completions.create(
        model="gemini-2.5-pro", messages=MESSAGES, functions=[WEATHER], function_call=function_call
    )
    job = fake.submitted[0].job
    assert job.tools == tools and job.tool_choice == tool_choice


async def test_legacy_history_becomes_paired_tool_calls(sdk: openai.AsyncOpenAI, fake: FakeWorker) -> None:
    """An assistant function_call and the function result after it reach the worker as a tool call and the
    tool result with the same id (so the prompt shows both)."""
    fake.script = [content("It is sunny in Paris."), finish()]
    history: list[Any] = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"role": "function", "name": "get_weather", "content": '{"sky": "sunny"}'},
    ]
    await sdk.chat.completions.create(model="gemini-2.5-pro", messages=history, functions=[WEATHER])
    messages = fake.submitted[0].job.messages
    call = messages[1]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert "function_call" not in messages[1]
    assert messages[2] == {"role": "tool", "tool_call_id": call["id"], "content": '{"sky": "sunny"}'}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"functions": [{"name": "bad name!"}]}, "functions.0.name"),
        ({"functions": []}, "functions"),
        ({"functions": [WEATHER], "function_call": {"name": "other"}}, "function_call"),
        ({"functions": [WEATHER], "function_call": "sometimes"}, "function_call"),
        ({"functions": [WEATHER], "tools": [{"type": "function", "function": WEATHER}]}, "functions"),
    ],
)
async def test_bad_legacy_parameters_are_400_naming_them(
    sdk: openai.AsyncOpenAI, fake: FakeWorker, extra: dict[str, Any], param: str
) -> None:
    """Invalid functions or function_call are refused before anything runs, naming the parameter."""
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(model="gemini-2.5-pro", messages=MESSAGES, extra_body=extra)
    assert info.value.param == param and not fake.submitted
