"""The official google-genai SDK (its default ``/v1`` and ``v1beta``) against the server and the fake worker."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from google import genai
from google.genai import errors, types

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

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)


def make_client(ready: TestClient, api_version: str | None = None, key: str = "unused") -> genai.Client:
    options = types.HttpOptions(base_url=str(ready.make_url("/")), api_version=api_version)
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture(params=[None, "v1beta"], ids=["v1", "v1beta"])
async def gclient(request: pytest.FixtureRequest, ready: TestClient) -> AsyncIterator[genai.Client]:
    client = make_client(ready, request.param)
    yield client
    await client.aio.aclose()


async def test_models_are_listed_in_gemini_shape(gclient: genai.Client) -> None:
    """models.list() and get() return the worker's models as Gemini describes them."""
    models = [m async for m in await gclient.aio.models.list()]
    assert [m.name for m in models] == ["models/gemini-2.5-pro", "models/gemini-2.5-flash"]
    one = await gclient.aio.models.get(model="gemini-2.5-flash")
    assert one.display_name == "Gemini 2.5 Flash" and one.output_token_limit == 65536
    assert one.input_token_limit == 1048576 and one.thinking is True
    assert one.supported_actions and "generateContent" in one.supported_actions


async def test_generate_content_with_usage(gclient: genai.Client, fake: FakeWorker) -> None:
    """A whole answer: text, STOP, usage with thoughts apart, no thought part unless asked."""
    fake.script = [reasoning("Thinking..."), content("Hello!"), usage(12, 5, 3), finish("STOP")]
    done = await gclient.aio.models.generate_content(
        model="gemini-2.5-pro",
        contents="Say hello",
        config=types.GenerateContentConfig(system_instruction="Be brief", temperature=0.5, top_k=40),
    )
    assert done.text == "Hello!" and done.model_version == "gemini-2.5-pro" and done.response_id
    assert done.candidates and done.candidates[0].finish_reason == types.FinishReason.STOP
    assert done.candidates[0].content and done.candidates[0].content.parts
    assert not any(p.thought for p in done.candidates[0].content.parts)
    meta = done.usage_metadata
    assert meta is not None and meta.prompt_token_count == 12 and meta.candidates_token_count == 5
    assert meta.thoughts_token_count == 3 and meta.total_token_count == 20
    job = fake.submitted[-1].job
    assert job.messages[0] == {"role": "system", "content": "Be brief"}
    assert job.messages[1]["role"] == "user" and job.temperature == 0.5


async def test_thinking_with_include_thoughts(gclient: genai.Client, fake: FakeWorker) -> None:
    """includeThoughts gives the reasoning as thought parts (streamed and whole); the budget reaches the job."""
    fake.script = [reasoning("Let me think."), content("42"), finish("STOP")]
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048)
    )
    done = await gclient.aio.models.generate_content(model="gemini-2.5-pro", contents="?", config=config)
    assert done.candidates and done.candidates[0].content and done.candidates[0].content.parts
    parts = done.candidates[0].content.parts
    assert [(p.text, bool(p.thought)) for p in parts] == [("Let me think.", True), ("42", False)]
    assert done.text == "42" and fake.submitted[-1].job.reasoning_effort == 2048
    chunks = [
        c
        async for c in await gclient.aio.models.generate_content_stream(
            model="gemini-2.5-pro", contents="?", config=config
        )
    ]
    streamed = [p for c in chunks if c.candidates for p in (c.candidates[0].content.parts or [])]  # type: ignore[union-attr]
    assert ("Let me think.", True) in [(p.text, bool(p.thought)) for p in streamed]
    level = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)
    )
    await gclient.aio.models.generate_content(model="gemini-2.5-pro", contents="?", config=level)
    assert fake.submitted[-1].job.reasoning_effort == "low"


async def test_stream_sends_pieces_then_finish_and_usage(gclient: genai.Client, fake: FakeWorker) -> None:
    """generate_content_stream (alt=sse): a chunk per piece, the last with finishReason, usage and grounding."""
    fake.script = [
        content("Hel"),
        content("lo"),
        grounding([{"uri": "https://a.example/", "title": "A", "domain": "a.example"}], ["q"]),
        usage(4, 2),
        finish("MAX_TOKENS"),
    ]
    chunks = [
        c
        async for c in await gclient.aio.models.generate_content_stream(model="gemini-2.5-pro", contents="Hi")
    ]
    assert "".join(c.text or "" for c in chunks) == "Hello"
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert last.usage_metadata and last.usage_metadata.prompt_token_count == 4
    meta = last.candidates[0].grounding_metadata
    assert meta and meta.web_search_queries == ["q"] and meta.grounding_chunks
    assert meta.grounding_chunks[0].web and meta.grounding_chunks[0].web.uri == "https://a.example/"
    assert fake.submitted[-1].job.stream is True


async def test_manual_function_calling_turn(gclient: genai.Client, fake: FakeWorker) -> None:
    """call -> functionResponse -> answer: the second job holds the call and its result paired by id."""
    fake.script = [tool_call("get_weather", {"city": "Paris"}), finish("STOP")]
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    first = await gclient.aio.models.generate_content(
        model="gemini-2.5-pro", contents="Weather?", config=config
    )
    assert first.function_calls and first.function_calls[0].name == "get_weather"
    call = first.function_calls[0]
    assert call.args == {"city": "Paris"} and call.id
    sent = fake.submitted[-1].job
    assert sent.tools and sent.tools[0]["function"]["name"] == "get_weather" and sent.tool_choice is None
    assert sent.tools[0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    fake.script = [content("Sunny in Paris."), finish("STOP")]
    assert first.candidates and first.candidates[0].content
    history = [
        types.Content(role="user", parts=[types.Part(text="Weather?")]),
        first.candidates[0].content,
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"sky": "sunny"})],
        ),
    ]
    second = await gclient.aio.models.generate_content(
        model="gemini-2.5-pro", contents=history, config=config
    )
    assert second.text == "Sunny in Paris."
    messages = fake.submitted[-1].job.messages
    assert messages[1]["role"] == "assistant" and messages[1]["tool_calls"][0]["id"] == call.id
    assert messages[2] == {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"sky": "sunny"})}


async def test_function_calling_modes(gclient: genai.Client, fake: FakeWorker) -> None:
    """ANY with one allowed name is a named tool_choice; NONE declares no function."""
    fake.script = [tool_call("get_weather", {"city": "Oslo"}), finish("STOP")]
    other = types.FunctionDeclaration(name="get_time", parameters_json_schema={"type": "object"})
    tools = [types.Tool(function_declarations=[WEATHER, other])]
    any_mode = types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(
            mode="ANY", allowed_function_names=["get_weather"]
        )
    )
    config = types.GenerateContentConfig(tools=tools, tool_config=any_mode)
    await gclient.aio.models.generate_content(model="gemini-2.5-pro", contents="?", config=config)
    job = fake.submitted[-1].job
    assert job.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert [t["function"]["name"] for t in job.tools or []] == ["get_weather"]
    fake.script = [content("no call"), finish("STOP")]
    none_mode = types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE"))
    config = types.GenerateContentConfig(tools=tools, tool_config=none_mode)
    await gclient.aio.models.generate_content(model="gemini-2.5-pro", contents="?", config=config)
    assert fake.submitted[-1].job.tool_choice == "none" and fake.submitted[-1].job.tools is None


async def test_response_schema(gclient: genai.Client, fake: FakeWorker) -> None:
    """responseSchema (uppercase types) becomes a json_schema response format; the answer parses."""
    fake.script = [content('```json\n{"name": "Ada", "age": 36}\n```'), finish("STOP")]
    schema = types.Schema(
        type=types.Type.OBJECT,
        properties={
            "name": types.Schema(type=types.Type.STRING),
            "age": types.Schema(type=types.Type.INTEGER),
        },
        required=["name", "age"],
    )
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    done = await gclient.aio.models.generate_content(model="gemini-2.5-pro", contents="Ada?", config=config)
    assert json.loads(done.text or "") == {"name": "Ada", "age": 36}
    fmt = fake.submitted[-1].job.response_format or {}
    assert (
        fmt["type"] == "json_schema"
        and fmt["json_schema"]["schema"]["properties"]["age"]["type"] == "integer"
    )
    fake.script = [content('{"name": "Ada"}'), finish("STOP")]
    with pytest.raises(errors.ServerError) as bad:
        await gclient.aio.models.generate_content(model="gemini-2.5-pro", contents="Ada?", config=config)
    assert bad.value.code == 502 and "age" in (bad.value.message or "")


async def test_count_tokens(gclient: genai.Client) -> None:
    done = await gclient.aio.models.count_tokens(model="gemini-2.5-pro", contents="Hello there, how are you?")
    assert done.total_tokens and done.total_tokens > 3
    long = await gclient.aio.models.count_tokens(model="gemini-2.5-pro", contents="word " * 20_000)
    assert long.total_tokens == 20_000  # a long prompt is counted in a thread, the same way
    with pytest.raises(errors.ClientError) as missing:
        await gclient.aio.models.count_tokens(model="no-such-model", contents="Hi")
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"


async def test_typed_errors(gclient: genai.Client, fake: FakeWorker) -> None:
    """Google's error shape: ClientError/ServerError with the code and status."""
    with pytest.raises(errors.ClientError) as bad:
        await gclient.aio.models.generate_content(
            model="gemini-2.5-pro", contents="Hi", config=types.GenerateContentConfig(temperature=5)
        )
    assert bad.value.code == 400 and bad.value.status == "INVALID_ARGUMENT"
    assert "generationConfig.temperature" in (bad.value.message or "")
    with pytest.raises(errors.ClientError) as many:
        await gclient.aio.models.generate_content(
            model="gemini-2.5-pro", contents="Hi", config=types.GenerateContentConfig(candidate_count=2)
        )
    assert many.value.code == 400 and "candidateCount" in (many.value.message or "")
    with pytest.raises(errors.ClientError) as missing:
        await gclient.aio.models.generate_content(model="gpt-4o", contents="Hi")
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"
    fake.script = [error("quota", "quota used up", retry_after=3600)]
    with pytest.raises(errors.ClientError) as quota:
        await gclient.aio.models.generate_content(model="gemini-2.5-pro", contents="Hi")
    assert quota.value.code == 429 and quota.value.status == "RESOURCE_EXHAUSTED"
    fake.script = [error("unavailable", "worker restarting")]
    with pytest.raises(errors.ServerError) as down:
        await gclient.aio.models.generate_content(model="gemini-2.5-pro", contents="Hi")
    assert down.value.code == 503 and down.value.status == "UNAVAILABLE"


async def test_error_in_the_middle_of_a_stream(gclient: genai.Client, fake: FakeWorker) -> None:
    fake.script = [content("partial "), error("upstream", "stream broke")]
    seen = []
    with pytest.raises(errors.APIError) as info:
        async for chunk in await gclient.aio.models.generate_content_stream(
            model="gemini-2.5-pro", contents="Hi"
        ):
            seen.append(chunk.text)
    assert "stream broke" in (info.value.message or "") and seen == ["partial "]


@pytest.mark.parametrize("settings_overrides", [{"admin_key": "adm"}])
async def test_keys_by_header_and_query(ready: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """With client keys, x-goog-api-key and ?key= authenticate; a wrong key is 401 UNAUTHENTICATED; the key in
    the URL never reaches the log."""
    made = await (await ready.post("/api/keys", headers={"x-api-key": "adm"})).json()
    bad = make_client(ready, "v1beta", key="wrong")
    with pytest.raises(errors.ClientError) as info:
        await bad.aio.models.generate_content(model="gemini-2.5-pro", contents="Hi")
    assert info.value.code == 401 and info.value.status == "UNAUTHENTICATED"
    await bad.aio.aclose()
    good = make_client(ready, "v1beta", key=made["key"])
    assert (await good.aio.models.generate_content(model="gemini-2.5-pro", contents="Hi")).text
    await good.aio.aclose()
    caplog.set_level(logging.DEBUG)
    for path in ("/v1beta/models", "/v1beta/models/gemini-2.5-pro:generateContent"):
        url = f"{path}?key={made['key']}"
        body: Any = {"contents": [{"parts": [{"text": "Hi"}]}]}
        resp = await (ready.post(url, json=body) if ":" in path else ready.get(url))
        assert resp.status == 200, await resp.text()
        resp = await (
            ready.post(f"{path}?key=wrong-{made['key']}", json=body)
            if ":" in path
            else ready.get(f"{path}?key=nope")
        )
        assert resp.status == 401 and (await resp.json())["error"]["status"] == "UNAUTHENTICATED"
    assert made["key"] not in caplog.text
    # the admin routes never take a key from the URL
    assert (await ready.get("/api/keys?key=adm")).status == 401
    assert (await ready.get("/api/keys", headers={"x-goog-api-key": "adm"})).status == 200


async def test_json_array_stream_is_sent_incrementally(ready: TestClient, fake: FakeWorker) -> None:
    """Without alt=sse the stream is one JSON array, "[" + objects joined by ",\\r\\n" + "]", as application/json."""
    fake.script = [content("one "), content("two"), finish("STOP")]
    body = {"contents": [{"role": "user", "parts": [{"text": "Count"}]}]}
    resp = await ready.post("/v1beta/models/gemini-2.5-pro:streamGenerateContent", json=body)
    assert resp.status == 200 and resp.content_type == "application/json"
    raw = (await resp.read()).decode()
    assert raw.startswith("[{") and raw.endswith("}]") and raw.count(",\r\n{") == 2
    items = json.loads(raw)
    assert [i["candidates"][0]["content"]["parts"][0]["text"] for i in items] == ["one ", "two", ""]
    assert items[-1]["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" in items[-1]


async def test_automatic_function_calling_with_a_python_function(
    gclient: genai.Client, fake: FakeWorker
) -> None:
    """The SDK's automatic function calling: it declares the Python function, runs the call that comes back
    and sends its result; the second job has the call and the result paired."""
    seen: list[str] = []

    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"sunny in {city}"

    fake.script_fn = lambda submit: (
        [tool_call("get_weather", {"city": "Rome"}), finish("STOP")]
        if len(fake.submitted) == 1
        else [content("It is sunny in Rome."), finish("STOP")]
    )
    config = types.GenerateContentConfig(tools=[get_weather])
    done = await gclient.aio.models.generate_content(
        model="gemini-2.5-pro", contents="Weather in Rome?", config=config
    )
    assert done.text == "It is sunny in Rome." and seen == ["Rome"]
    first, second = fake.submitted[0].job, fake.submitted[1].job
    assert first.tools and first.tools[0]["function"]["name"] == "get_weather"
    call_id = second.messages[1]["tool_calls"][0]["id"]
    assert second.messages[2]["role"] == "tool" and second.messages[2]["tool_call_id"] == call_id
    assert "sunny in Rome" in second.messages[2]["content"]


async def test_response_schema_from_a_pydantic_model_is_parsed(
    gclient: genai.Client, fake: FakeWorker
) -> None:
    """The common SDK use: a pydantic class as response_schema; response.parsed is an instance of it."""
    from pydantic import BaseModel

    class Recipe(BaseModel):
        name: str
        minutes: int | None
        tags: list[str]

    fake.script = [content('{"name": "Soup", "minutes": null, "tags": ["warm"]}'), finish("STOP")]
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=Recipe)
    done = await gclient.aio.models.generate_content(
        model="gemini-2.5-pro", contents="A recipe", config=config
    )
    assert done.parsed == Recipe(name="Soup", minutes=None, tags=["warm"])
    sent = fake.submitted[-1].job.response_format or {}
    assert sent["type"] == "json_schema" and set(sent["json_schema"]["schema"]["properties"]) == {
        "name",
        "minutes",
        "tags",
    }
