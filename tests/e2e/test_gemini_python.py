"""The official google-genai SDK (its default ``/v1`` and ``v1beta``) against the whole demo stack."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator

import pytest
import requests
from google import genai
from google.genai import errors, types

from aistudio_sim.stack import Stack
from tests.e2e.conftest import ADMIN_KEY, LEVEL_MODEL, PLAIN_MODEL, THINKING_MODEL

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather of a city",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}, required=["city"]
    ),
)
NO_AUTO = types.AutomaticFunctionCallingConfig(disable=True)


@pytest.fixture(params=[None, "v1beta"], ids=["v1", "v1beta"])
async def client(request: pytest.FixtureRequest, stack: Stack) -> AsyncIterator[genai.Client]:
    options = types.HttpOptions(base_url=stack.base_url + "/", api_version=request.param, timeout=120_000)
    c = genai.Client(api_key="e2e-unused", http_options=options)
    yield c
    await c.aio.aclose()


def last_request(stack: Stack) -> dict:
    return stack.sim_inspect("requests/last")


async def test_models_and_generate(client: genai.Client, stack: Stack) -> None:
    """The simulator's models in Gemini's shape; a generated answer is the simulator's, with usage."""
    names = [m.name async for m in await client.aio.models.list()]
    assert f"models/{PLAIN_MODEL}" in names
    done = await client.aio.models.generate_content(model=PLAIN_MODEL, contents="Hello there")
    planned = last_request(stack)["response"]["answer_text"]
    assert done.text == planned and planned.startswith(f"[simulated {PLAIN_MODEL}] You said: Hello there")
    assert done.candidates and done.candidates[0].finish_reason == types.FinishReason.STOP
    assert done.usage_metadata and done.usage_metadata.total_token_count


async def test_stream(client: genai.Client, stack: Stack) -> None:
    """generate_content_stream gives the answer in several chunks."""
    chunks = [
        c.text or ""
        async for c in await client.aio.models.generate_content_stream(
            model=PLAIN_MODEL, contents="Tell me #sim:words=30 #sim:chunks=4"
        )
    ]
    assert len([c for c in chunks if c]) >= 2
    assert "".join(chunks) == last_request(stack)["response"]["answer_text"]


async def test_thinking_with_include_thoughts(client: genai.Client) -> None:
    """includeThoughts on a thinking model: the thoughts are thought parts, apart from the answer."""
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
    )
    done = await client.aio.models.generate_content(
        model=THINKING_MODEL, contents="Think first #sim:think=20", config=config
    )
    assert done.candidates and done.candidates[0].content and done.candidates[0].content.parts
    thoughts = [p.text for p in done.candidates[0].content.parts if p.thought]
    assert thoughts and len((thoughts[0] or "").split()) == 20
    assert done.text and (thoughts[0] or "") not in done.text
    assert done.usage_metadata and done.usage_metadata.thoughts_token_count


async def test_manual_function_calling_turn(client: genai.Client, stack: Stack) -> None:
    """call -> functionResponse -> answer: the call comes back with its args, its result reaches the prompt."""
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], automatic_function_calling=NO_AUTO
    )
    prompt = 'Weather? #sim:tool=get_weather #sim:args={"city": "Paris"}'
    first = await client.aio.models.generate_content(model=PLAIN_MODEL, contents=prompt, config=config)
    assert first.function_calls and first.function_calls[0].name == "get_weather"
    assert first.function_calls[0].args == {"city": "Paris"}
    assert "get_weather" in json.dumps(last_request(stack)["tools"])
    assert first.candidates and first.candidates[0].content
    history = [
        types.Content(role="user", parts=[types.Part(text=prompt)]),
        first.candidates[0].content,
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(name="get_weather", response={"sky": "sunny-result-7781"})
            ],
        ),
    ]
    second = await client.aio.models.generate_content(model=PLAIN_MODEL, contents=history, config=config)
    assert second.candidates and "sunny-result-7781" in json.dumps(last_request(stack))


async def test_response_schema(client: genai.Client) -> None:
    """A response schema: the answer is JSON valid for it."""
    schema = types.Schema(
        type=types.Type.OBJECT,
        properties={
            "name": types.Schema(type=types.Type.STRING),
            "age": types.Schema(type=types.Type.INTEGER),
        },
        required=["name", "age"],
    )
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    done = await client.aio.models.generate_content(
        model=PLAIN_MODEL, contents="A person #sim:json", config=config
    )
    value = json.loads(done.text or "")
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


async def test_count_tokens_and_typed_errors(client: genai.Client, stack: Stack) -> None:
    counted = await client.aio.models.count_tokens(
        model=PLAIN_MODEL, contents="Hello there, how are you today?"
    )
    assert counted.total_tokens and counted.total_tokens > 3
    with pytest.raises(errors.ClientError) as missing:
        await client.aio.models.generate_content(model="no-such-model", contents="Hi")
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as quota:
        await client.aio.models.generate_content(model=PLAIN_MODEL, contents="Hi #sim:error=quota")
    assert quota.value.code == 429 and quota.value.status == "RESOURCE_EXHAUSTED"


def test_json_array_stream_over_raw_http(stack: Stack) -> None:
    """Without alt=sse: one JSON array, "[" + objects joined by ",\\r\\n" + "]", as application/json."""
    body = {"contents": [{"role": "user", "parts": [{"text": "Count #sim:words=20 #sim:chunks=3"}]}]}
    url = f"{stack.base_url}/v1beta/models/{PLAIN_MODEL}:streamGenerateContent"
    with requests.post(
        url, json=body, headers={"x-goog-api-key": "unused"}, stream=True, timeout=120
    ) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
        raw = b"".join(resp.iter_content(chunk_size=None)).decode()
    assert raw.startswith("[{") and raw.rstrip().endswith("}]") and ",\r\n{" in raw
    items = json.loads(raw)
    text = "".join(p.get("text", "") for i in items for p in i["candidates"][0]["content"]["parts"])
    assert text == last_request(stack)["response"]["answer_text"]
    assert (
        items[-1]["candidates"][0]["finishReason"] == "STOP" and items[-1]["usageMetadata"]["totalTokenCount"]
    )


def test_the_readme_snippet(stack: Stack) -> None:
    """The README's snippet as written: the sync client, the base URL without a version."""
    client = genai.Client(api_key="any", http_options=types.HttpOptions(base_url=stack.base_url))
    answer = client.models.generate_content(model=PLAIN_MODEL, contents="Say hello")
    assert answer.text == last_request(stack)["response"]["answer_text"]
    chunks = [c.text for c in client.models.generate_content_stream(model=PLAIN_MODEL, contents="Count to 5")]
    assert "".join(c or "" for c in chunks) == last_request(stack)["response"]["answer_text"]
    client.close()


def test_inline_image_in_url_safe_unpadded_base64_reaches_the_page(stack: Stack) -> None:
    """inlineData as Google's clients may spell it (URL-safe, no padding): the page gets the same bytes."""
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8cfc0f01f0005000201ffa7c1e1f40000000049454e44ae426082"
    )
    data = base64.urlsafe_b64encode(png).decode().rstrip("=")
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": data}}],
            }
        ]
    }
    resp = requests.post(
        f"{stack.base_url}/v1beta/models/{PLAIN_MODEL}:generateContent",
        json=body,
        headers={"x-goog-api-key": "k"},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    [attachment] = last_request(stack)["attachments"]
    assert attachment["sha256"] == hashlib.sha256(png).hexdigest()


async def test_google_search_grounding(client: genai.Client, stack: Stack) -> None:
    """The googleSearch tool turns grounding on; the sources come back as groundingMetadata."""
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    done = await client.aio.models.generate_content(
        model=THINKING_MODEL, contents="Capital of Chile? #sim:search=2", config=config
    )
    planned = last_request(stack)["response"]["grounding"]
    assert done.candidates and done.candidates[0].grounding_metadata
    meta = done.candidates[0].grounding_metadata
    assert [c.web.uri for c in meta.grounding_chunks or [] if c.web] == [s["uri"] for s in planned["sources"]]
    assert meta.web_search_queries == ["Capital of Chile?"]


def test_client_keys_guard_v1beta_and_a_key_in_the_url_is_never_logged(stack: Stack) -> None:
    """With a client key: the SDK with it works (x-goog-api-key), a wrong one is 401 UNAUTHENTICATED, ?key= works
    on raw HTTP; no log file of the stack holds the key afterwards."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    made = requests.post(
        f"{stack.base_url}/api/keys", json={"label": "gemini-e2e"}, headers=admin, timeout=30
    ).json()
    key = made["key"]
    try:
        good = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=stack.base_url))
        assert good.models.generate_content(model=PLAIN_MODEL, contents="keyed").text
        bad = genai.Client(api_key="sk-aisp-wrong", http_options=types.HttpOptions(base_url=stack.base_url))
        with pytest.raises(errors.ClientError) as info:
            bad.models.generate_content(model=PLAIN_MODEL, contents="wrong key")
        assert info.value.code == 401 and info.value.status == "UNAUTHENTICATED"
        body = {"contents": [{"parts": [{"text": "key in the url"}]}]}
        url = f"{stack.base_url}/v1beta/models/{PLAIN_MODEL}:generateContent"
        assert requests.post(f"{url}?key={key}", json=body, timeout=120).status_code == 200
        refused = requests.post(f"{url}?key={key}-not", json=body, timeout=120)
        assert refused.status_code == 401 and refused.json()["error"]["status"] == "UNAUTHENTICATED"
        assert requests.get(f"{stack.base_url}/v1beta/models", timeout=30).status_code == 401
    finally:
        requests.delete(
            f"{stack.base_url}/api/keys/{made['id']}", headers=admin, timeout=30
        ).raise_for_status()
    logs = list(stack.log_dir.glob("*.log"))
    assert any(log.name.startswith("api_server") for log in logs)
    for log in logs:
        assert key not in log.read_text(errors="replace"), log.name


def test_thinking_config_reaches_the_page(stack: Stack) -> None:
    """thinkingLevel on a level-family model and thinkingBudget on a budget-family one set the page's
    thinking controls, as the simulator's recorded generation config shows."""
    client = genai.Client(
        api_key="k", http_options=types.HttpOptions(base_url=stack.base_url, api_version="v1beta")
    )
    low = types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)
    client.models.generate_content(
        model=LEVEL_MODEL, contents="Level", config=types.GenerateContentConfig(thinking_config=low)
    )
    thinking = last_request(stack)["generation_config"]["thinking"]
    assert (
        last_request(stack)["model"] == LEVEL_MODEL
        and thinking["level"] == "LOW"
        and thinking["budget"] is None
    )
    budget = types.ThinkingConfig(thinking_budget=4096)
    client.models.generate_content(
        model=THINKING_MODEL, contents="Budget", config=types.GenerateContentConfig(thinking_config=budget)
    )
    assert last_request(stack)["generation_config"]["thinking"]["budget"] == 4096
    client.close()
