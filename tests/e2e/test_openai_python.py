"""The official openai Python SDK (sync and async) against the whole demo stack."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import LEVEL_MODEL, PLAIN_MODEL, THINKING_MODEL

SIM_MODELS = {
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-2.0-flash",
    "gemma-3-27b-it",
    "gemini-2.5-flash-preview-tts",
}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
    ) as c:
        yield c


@pytest.fixture
async def aclient(stack: Stack):
    async with openai.AsyncOpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
    ) as c:
        yield c


def last_request(stack: Stack) -> dict:
    return stack.sim_inspect("requests/last")


# --------------------------------------------------------------------------- models


def test_models_list_shows_the_simulators_models_marked_simulated(client: openai.OpenAI):
    """Every listed id is a simulator model and every description starts with [simulated]."""
    models = client.models.list().data
    ids = {m.id for m in models}
    assert ids and ids <= SIM_MODELS
    assert {THINKING_MODEL, PLAIN_MODEL, LEVEL_MODEL} <= ids
    for m in models:
        assert m.object == "model"
        assert (m.model_extra or {}).get("description", "").startswith("[simulated]"), m


async def test_async_models_retrieve_names_one_model(aclient: openai.AsyncOpenAI):
    """models.retrieve through the async client returns that model."""
    model = await aclient.models.retrieve(THINKING_MODEL)
    assert model.id == THINKING_MODEL
    assert model.model_extra["description"].startswith("[simulated]")


# --------------------------------------------------------------------------- answers


def test_non_stream_answer_is_the_simulators_answer(client: openai.OpenAI, stack: Stack):
    """A plain completion returns exactly the text the simulator planned, marked as the demo."""
    done = client.chat.completions.create(model=PLAIN_MODEL, messages=user("Hello there"))
    planned = last_request(stack)["response"]["answer_text"]
    assert done.choices[0].message.content == planned
    assert planned.startswith(f"[simulated {PLAIN_MODEL}] You said: Hello there")
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].finish_reason == "stop"
    assert done.model == PLAIN_MODEL
    assert done.system_fingerprint.startswith("fp_aistudio_sim")
    assert done.usage.completion_tokens > 0 and done.usage.total_tokens >= done.usage.prompt_tokens


def test_stream_deltas_join_to_the_answer_and_usage_comes_last(client: openai.OpenAI, stack: Stack):
    """Streaming with include_usage: deltas join to the planned answer; a final choice-less usage chunk."""
    chunks = list(
        client.chat.completions.create(
            model=PLAIN_MODEL,
            messages=user("Stream me #sim:words=30 #sim:chunks=6"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    planned = last_request(stack)["response"]["answer_text"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == planned and len(planned.split()) == 30
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert all(c.system_fingerprint.startswith("fp_aistudio_sim") for c in chunks)


async def test_async_stream_and_non_stream_give_the_same_text(aclient: openai.AsyncOpenAI):
    """The async client streams and not; an echoed prompt comes back byte-exact both ways."""
    prompt = "Echo this back: «ünïcode» — tabs\tand  spaces #sim:echo"
    whole = await aclient.chat.completions.create(model=PLAIN_MODEL, messages=user(prompt))
    stream = await aclient.chat.completions.create(model=PLAIN_MODEL, messages=user(prompt), stream=True)
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts) == whole.choices[0].message.content
    assert prompt in whole.choices[0].message.content


def test_reasoning_content_is_separate_from_the_answer(client: openai.OpenAI, stack: Stack):
    """#sim:think=20 on a thinking model: 20 thought words in reasoning_content, none in content."""
    done = client.chat.completions.create(
        model=THINKING_MODEL, messages=user("Think first #sim:think=20"), reasoning_effort="low"
    )
    planned = last_request(stack)["response"]
    message = done.choices[0].message
    reasoning = message.model_extra["reasoning_content"]
    assert reasoning.strip() == planned["thought_text"].strip()
    assert len(reasoning.split()) == 20
    assert message.content == planned["answer_text"]
    assert reasoning.strip() not in message.content
    assert done.usage.completion_tokens_details.reasoning_tokens > 0


def test_streamed_reasoning_arrives_before_the_answer(client: openai.OpenAI, stack: Stack):
    """Streaming: reasoning_content deltas first, then content deltas, never mixed in one delta."""
    chunks = list(
        client.chat.completions.create(
            model=THINKING_MODEL, messages=user("Think #sim:think=20"), reasoning_effort="low", stream=True
        )
    )
    planned = last_request(stack)["response"]
    kinds = []
    reasoning = content = ""
    for c in chunks:
        if not c.choices:
            continue
        extra = c.choices[0].delta.model_extra or {}
        if extra.get("reasoning_content"):
            kinds.append("r")
            reasoning += extra["reasoning_content"]
            assert not c.choices[0].delta.content
        if c.choices[0].delta.content:
            kinds.append("c")
            content += c.choices[0].delta.content
    assert reasoning.strip() == planned["thought_text"].strip()
    assert content == planned["answer_text"]
    assert "".join(kinds).rstrip("c") == "r" * kinds.count("r"), kinds


# --------------------------------------------------------------------------- parameters on the wire


def test_sampling_parameters_reach_the_simulator(client: openai.OpenAI, stack: Stack):
    """temperature, top_p, max_tokens and stop arrive in the page's GenerateContent request."""
    client.chat.completions.create(
        model=THINKING_MODEL,
        messages=user("Params"),
        temperature=0.3,
        top_p=0.5,
        max_tokens=33,
        stop=["END", "HALT"],
    )
    config = last_request(stack)["generation_config"]
    assert config["temperature"] == pytest.approx(0.3)
    assert config["top_p"] == pytest.approx(0.5)
    assert config["max_output_tokens"] == 33
    assert config["stop_sequences"] == ["END", "HALT"]


@pytest.mark.parametrize(
    ("temperature", "top_p"),
    [(0.123456789, 0.5), (1.0, 0.1234567), (0.7, 0.7890625)],
    ids=["temperature-9-digits", "top_p-7-digits", "top_p-binary-fraction"],
)
def test_finely_grained_sampling_values_are_accepted(client: openai.OpenAI, stack: Stack, temperature, top_p):
    """Valid temperature/top_p with many digits are answered, arriving rounded at most to the page's precision."""
    client.chat.completions.create(
        model=PLAIN_MODEL, messages=user("Precise"), temperature=temperature, top_p=top_p
    )
    config = last_request(stack)["generation_config"]
    assert config["temperature"] == pytest.approx(temperature, abs=1e-3)
    assert config["top_p"] == pytest.approx(top_p, abs=1e-3)


def test_max_completion_tokens_reaches_the_simulator_and_cuts_the_answer(client: openai.OpenAI, stack: Stack):
    """max_completion_tokens becomes maxOutputTokens; the cut answer finishes with length."""
    done = client.chat.completions.create(
        model=PLAIN_MODEL, messages=user("Long #sim:words=50"), max_completion_tokens=7, stop="NEVER-SEEN"
    )
    recorded = last_request(stack)
    assert recorded["generation_config"]["max_output_tokens"] == 7
    assert recorded["generation_config"]["stop_sequences"] == ["NEVER-SEEN"]
    assert done.choices[0].finish_reason == "length"
    assert done.choices[0].message.content == recorded["response"]["answer_text"]
    assert len(done.choices[0].message.content.split()) == 7


def test_stop_sequence_cuts_the_answer(client: openai.OpenAI, stack: Stack):
    """A stop sequence the scripted answer contains cuts the answer just before it."""
    done = client.chat.completions.create(model=PLAIN_MODEL, messages=user("alpha beta"), stop=["said:"])
    recorded = last_request(stack)
    assert recorded["generation_config"]["stop_sequences"] == ["said:"]
    assert done.choices[0].message.content == recorded["response"]["answer_text"]
    assert done.choices[0].message.content.startswith(f"[simulated {PLAIN_MODEL}]")
    assert "said:" not in done.choices[0].message.content
    assert done.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("model", "effort", "thinking"),
    [
        ("gemini-2.5-flash", "low", {"include_thoughts": True, "budget": 6144, "level": None}),
        ("gemini-2.5-flash", 0, {"include_thoughts": False, "budget": 0, "level": None}),
        ("gemini-2.5-pro", "high", {"include_thoughts": True, "budget": 32768, "level": None}),
        ("gemini-2.5-pro", 2000, {"include_thoughts": True, "budget": 2000, "level": None}),
        ("gemini-3-flash-preview", "medium", {"include_thoughts": True, "budget": None, "level": "MEDIUM"}),
        ("gemini-3-pro-preview", "minimal", {"include_thoughts": True, "budget": None, "level": "LOW"}),
    ],
    ids=["flash-low", "flash-off", "pro-high", "pro-budget", "g3flash-medium", "g3pro-minimal"],
)
def test_reasoning_effort_reaches_the_simulator_per_family(
    client: openai.OpenAI, stack: Stack, model, effort, thinking
):
    """reasoning_effort becomes the thinking config of the model's family (budget or level)."""
    client.chat.completions.create(
        model=model, messages=user("Effort"), extra_body={"reasoning_effort": effort}
    )
    recorded = last_request(stack)
    assert recorded["model"] == model
    assert recorded["generation_config"]["thinking"] == thinking


def test_model_switch_between_thinking_families(client: openai.OpenAI, stack: Stack):
    """Alternating a budget-family and a level-family model: each request runs on its own model and config."""
    plan = [(THINKING_MODEL, "high"), (LEVEL_MODEL, "low"), (THINKING_MODEL, "minimal"), (PLAIN_MODEL, None)]
    for model, effort in plan:
        kwargs = {"reasoning_effort": effort} if effort else {}
        done = client.chat.completions.create(model=model, messages=user(f"Switch to {model}"), **kwargs)
        recorded = last_request(stack)
        assert recorded["model"] == model
        assert done.model == model
        assert done.choices[0].message.content.startswith(f"[simulated {model}]")
        thinking = recorded["generation_config"]["thinking"]
        if model == LEVEL_MODEL:
            assert thinking["level"] == "LOW" and thinking["budget"] is None
        elif effort == "high":
            assert thinking["budget"] == 24576 and thinking["level"] is None
        elif effort == "minimal":
            assert thinking["budget"] == 512
    assert [r["model"] for r in stack.sim_requests()] == [m for m, _ in plan]


# --------------------------------------------------------------------------- errors


def test_quota_exhausted_raises_rate_limit_error(client: openai.OpenAI):
    """The simulator's 429 quota answer surfaces as RateLimitError with insufficient_quota."""
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=PLAIN_MODEL, messages=user("Spend #sim:error=quota"))
    assert info.value.status_code == 429
    assert info.value.code == "insufficient_quota"
    assert info.value.response.headers.get("retry-after")


@pytest.mark.parametrize(
    ("directive", "exc", "status"),
    [
        ("quota", openai.RateLimitError, 429),
        ("rate_limit", openai.RateLimitError, 429),
        ("permission", openai.PermissionDeniedError, 403),
        ("internal", openai.InternalServerError, 502),
    ],
)
def test_stream_failure_before_output_raises_the_typed_error(client: openai.OpenAI, directive, exc, status):
    """A streamed request that fails before its first output gets the real HTTP status, so the SDK raises its
    typed exception (with Retry-After on 429) at create(), as without streaming."""
    with pytest.raises(exc) as info:
        client.chat.completions.create(
            model=PLAIN_MODEL, messages=user(f"Fail #sim:error={directive}"), stream=True
        )
    assert info.value.status_code == status
    if status == 429:
        assert float(info.value.response.headers["retry-after"]) > 0


async def test_async_stream_failure_before_output_raises_rate_limit_error(aclient: openai.AsyncOpenAI):
    """The async client gets the same typed exception for a streamed quota error."""
    with pytest.raises(openai.RateLimitError) as info:
        await aclient.chat.completions.create(
            model=PLAIN_MODEL, messages=user("Spend #sim:error=quota"), stream=True
        )
    assert info.value.code == "insufficient_quota"


def test_stream_failure_after_output_raises_api_error_in_band(client: openai.OpenAI):
    """After output has started the failure arrives as an error event: the text so far, then an APIError."""
    stream = client.chat.completions.create(
        model=PLAIN_MODEL, stream=True, messages=user("Fail #sim:error=cut #sim:words=40")
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(seen) and info.value.code == "upstream_error"


async def test_async_unknown_model_raises_not_found(aclient: openai.AsyncOpenAI):
    """An unknown model id is refused with a typed 404 (model_not_found) before reaching the page."""
    with pytest.raises(openai.NotFoundError) as info:
        await aclient.chat.completions.create(model="gemini-0-imaginary", messages=user("Hi"))
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 7}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else v,
)
def test_bad_parameters_raise_bad_request(client: openai.OpenAI, stack: Stack, extra, param):
    """Out-of-range or unsupported parameters give BadRequestError naming the parameter, nothing is run."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=THINKING_MODEL, messages=user("Bad"), extra_body=extra)
    assert info.value.status_code == 400
    assert info.value.body["type"] == "invalid_request_error"
    assert info.value.param == param
    assert stack.sim_requests() == []


def test_empty_messages_raise_bad_request(client: openai.OpenAI):
    """A request without messages is a 400."""
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=PLAIN_MODEL, messages=[])


# --------------------------------------------------------------------------- legacy functions

WEATHER_FN = {
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.mark.parametrize("stream", [False, True])
def test_legacy_functions_round_trip(client: openai.OpenAI, stack: Stack, stream: bool):
    """The deprecated functions parameter reaches the page as a function declaration and the call comes back
    as message.function_call with finish_reason function_call; its result, sent back as a function message,
    reaches the prompt."""
    prompt = 'Weather? #sim:tool=get_weather #sim:args={"city": "Paris"}'
    if stream:
        chunks = list(
            client.chat.completions.create(
                model=PLAIN_MODEL, messages=user(prompt), functions=[WEATHER_FN], stream=True
            )
        )
        calls = [
            c.choices[0].delta.function_call for c in chunks if c.choices and c.choices[0].delta.function_call
        ]
        name, arguments = calls[0].name, "".join(f.arguments or "" for f in calls)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        done = client.chat.completions.create(
            model=PLAIN_MODEL, messages=user(prompt), functions=[WEATHER_FN]
        )
        assert done.choices[0].message.tool_calls is None
        name, arguments = (
            done.choices[0].message.function_call.name,
            done.choices[0].message.function_call.arguments,
        )
        finish = [done.choices[0].finish_reason]
    assert (name, json.loads(arguments), finish) == ("get_weather", {"city": "Paris"}, ["function_call"])
    declared = last_request(stack)["tools"]
    assert "get_weather" in json.dumps(declared)
    history = [
        *user(prompt),
        {"role": "assistant", "content": None, "function_call": {"name": name, "arguments": arguments}},
        {"role": "function", "name": "get_weather", "content": "sunny-result-7781"},
    ]
    client.chat.completions.create(model=PLAIN_MODEL, messages=history, functions=[WEATHER_FN])
    assert "sunny-result-7781" in json.dumps(last_request(stack))
