"""Request validation: every parameter, the dotted ``param`` of each 400, and the Job it builds."""

from __future__ import annotations

from typing import Any

import pytest

from api_server.schemas import model_id, parse_chat_request
from shared.errors import InvalidRequest

USER = [{"role": "user", "content": "hi"}]


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-pro", "messages": USER, **extra}


def refused(data: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(data)
    assert info.value.status == 400
    return info.value


def test_full_openai_request_is_accepted() -> None:
    """Every documented field and message shape validates."""
    req = parse_chat_request(
        {
            "model": "models/gemini-2.5-pro",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
                {
                    "role": "user",
                    "name": "ann",
                    "content": [
                        {"type": "text", "text": "look"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                        {
                            "type": "file",
                            "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                {"role": "function", "name": "f", "content": "42"},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.5,
            "top_p": 0.9,
            "max_tokens": 100,
            "stop": ["END"],
            "reasoning_effort": "low",
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
                {"type": "google_search"},
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
            },
            "seed": 7,
            "parallel_tool_calls": False,
            "n": 1,
            "logprobs": False,
            "frequency_penalty": 0.1,
            "presence_penalty": -0.1,
            "logit_bias": {"50256": -100},
            "user": "u",
            "metadata": {"k": "v"},
            "store": False,
            "service_tier": "auto",
            "attachments": ["data:text/plain;base64,aGk=", {"path": "/x/y.txt"}],
            "mcp_endpoint": "http://m",
        }
    )
    assert req.include_usage and req.max_output == 100 and req.stop_list == ["END"]
    assert model_id(req.model) == "gemini-2.5-pro"


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"messages": USER}, "model"),
        ({"model": "m"}, "messages"),
        (body(messages=[]), "messages"),
        (body(messages="hi"), "messages"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages.0.role"),
        (body(messages=[{"content": "x"}]), "messages.0.role"),
        (body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
        (body(messages=[{"role": "user"}]), "messages.0.content"),
        (
            body(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
            "messages.0.content.0.text",
        ),
        (body(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages.0.content.0.type"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            "messages.0.content.0.image_url.url",
        ),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages.0.tool_call_id"),
        (body(messages=[{"role": "function", "content": "x"}]), "messages.0.name"),
        (
            body(messages=[USER[0], {"role": "assistant", "tool_calls": [{"type": "function"}]}]),
            "messages.1.tool_calls.0.function",
        ),
        (body(stream="yes"), "stream"),
        (body(stream_options={"include_usage": "x"}), "stream_options.include_usage"),
        (body(temperature=2.5), "temperature"),
        (body(temperature=-0.1), "temperature"),
        (body(temperature="hot"), "temperature"),
        (body(top_p=1.5), "top_p"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_completion_tokens="many"), "max_completion_tokens"),
        (body(max_output_tokens=-5), "max_output_tokens"),
        (body(stop=["a"] * 17), "stop"),
        (body(stop=[""]), "stop"),
        (body(stop=5), "stop"),
        (body(stop={"a": 1}), "stop"),  # not "stop.str": the union member's name is no part of the request
        (body(messages=[{"role": "user", "content": {"a": 1}}]), "messages.0.content"),
        (body(tool_choice={}), "tool_choice.type"),
        (body(reasoning_effort="extreme"), "reasoning_effort"),
        (body(reasoning_effort=-2), "reasoning_effort"),
        (body(reasoning_effort=True), "reasoning_effort"),
        (body(tools=[{"type": "retrieval"}]), "tools.0.type"),
        (body(tools=[{"type": "function", "function": {"name": "bad name!"}}]), "tools.0.function.name"),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(tool_choice={"type": "function", "function": {"name": "nope"}}), "tool_choice"),
        (body(response_format={"type": "xml"}), "response_format.type"),
        (body(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (body(seed="x"), "seed"),
        (body(parallel_tool_calls="x"), "parallel_tool_calls"),
        (body(n=2), "n"),
        (body(logprobs=True), "logprobs"),
        (body(top_logprobs=2), "top_logprobs"),
        (body(frequency_penalty=3), "frequency_penalty"),
        (body(attachments=[5]), "attachments.0"),
    ],
)
def test_invalid_parameter_is_named_in_the_error(data: dict[str, Any], param: str) -> None:
    """A bad value gives 400 with ``param`` as the dotted path to it."""
    err = refused(data)
    assert err.param == param, err.message
    assert err.to_openai()["error"]["type"] == "invalid_request_error"


def test_unsupported_parameters_explain_why() -> None:
    """n > 1, logprobs and top_logprobs are refused with an explanation."""
    assert "not supported" in refused(body(n=3)).message
    assert refused(body(logprobs=True)).code == "unsupported_parameter"


def test_body_that_is_not_an_object_is_refused() -> None:
    """A JSON array or string body is a 400 without a param."""
    assert refused([1, 2]).param is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("minimal", "minimal"),
        ("LOW", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("none", "none"),
        (0, 0),
        ("0", 0),
        (-1, -1),
        ("-1", -1),
        (8192, 8192),
        (" 1024 ", 1024),
        (None, None),
    ],
)
def test_reasoning_effort_accepts_names_and_budgets(value: Any, expected: Any) -> None:
    """Names are normalised, numeric strings become integers."""
    assert parse_chat_request(body(reasoning_effort=value)).reasoning_effort == expected


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({}, None),
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 60}, 60),
        ({"max_output_tokens": 70}, 70),
        ({"max_tokens": 50, "max_completion_tokens": 50}, 50),
        ({"max_tokens": 500, "max_completion_tokens": 60, "max_output_tokens": 70}, 60),
    ],
)
def test_output_limit_spellings_are_honoured_and_the_smallest_wins(
    limits: dict[str, int], expected: Any
) -> None:
    """All three output-limit names map to max_output; disagreeing values resolve to the smallest."""
    assert parse_chat_request(body(**limits)).max_output == expected


@pytest.mark.parametrize(
    ("stop", "expected"),
    [(..., None), (None, None), ([], []), ("END", ["END"]), (["a", "b"], ["a", "b"])],
)
def test_stop_absent_null_string_and_list(stop: Any, expected: Any) -> None:
    """Absent or null stop leaves the worker default; [] means no stops; a string is one stop."""
    data = body() if stop is ... else body(stop=stop)
    assert parse_chat_request(data).stop_list == expected


def test_ignored_parameters_are_accepted_but_still_validated() -> None:
    """Penalties, logit_bias, user, metadata, store and service_tier pass validation with their values; a value
    outside OpenAI's own range is still a 400 naming it."""
    req = parse_chat_request(
        body(
            frequency_penalty=1,
            presence_penalty=-1.5,
            logit_bias={"1": 1},
            user="x",
            metadata={"a": "b"},
            store=True,
            service_tier="default",
        )
    )
    assert (
        req.frequency_penalty,
        req.presence_penalty,
        req.logit_bias,
        req.user,
        req.metadata,
        req.store,
        req.service_tier,
    ) == (1, -1.5, {"1": 1}, "x", {"a": "b"}, True, "default")
    for name, bad in (("frequency_penalty", 3), ("presence_penalty", -2.5), ("metadata", {"a": 1})):
        with pytest.raises(InvalidRequest) as info:
            parse_chat_request(body(**{name: bad}))
        assert info.value.param is not None and info.value.param.startswith(name)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("aistudio/x/gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini-2.5-pro", "gemini-2.5-pro"),
    ],
)
def test_model_prefix_is_dropped(given: str, expected: str) -> None:
    """The part after the last '/' is the model id."""
    assert model_id(given) == expected


@pytest.mark.parametrize("tools", [None, [{"type": "google_search"}]])
def test_tool_choice_required_without_a_function_is_refused(tools: Any) -> None:
    """tool_choice "required" with no function to call is a 400 naming tool_choice (the fuzzer found it
    answered 502 after a whole generation)."""
    extra = {"tools": tools} if tools else {}
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(body(tool_choice="required", **extra))
    assert info.value.param == "tool_choice"


@pytest.mark.parametrize(
    ("data", "param", "code", "message"),
    [
        ([1, 2], None, "invalid_body", "The request body must be a JSON object."),
        ({"messages": USER}, "model", "invalid_value", "Missing required parameter: 'model'."),
        (
            body(
                messages=[
                    USER[0],
                    {"role": "assistant", "tool_calls": [{"type": "function", "function": {}}]},
                ]
            ),
            "messages.1.tool_calls.0.function.name",
            "invalid_value",
            "Missing required parameter: 'messages.1.tool_calls.0.function.name'.",
        ),
        (
            body(stop=[""]),
            "stop",
            "invalid_value",
            "Invalid value for 'stop': stop sequences must be non-empty strings.",
        ),
        (
            body(messages=[USER[0], {"role": "assistant", "tool_calls": [{"function": {"arguments": 5}}]}]),
            "messages.1.tool_calls.0.function.arguments",
            "invalid_value",  # a wrong value beats a missing sibling
            "Invalid value for 'messages.1.tool_calls.0.function.arguments': Input should be a valid string.",
        ),
        (
            body(temperature=3),
            "temperature",
            "invalid_value",
            "Invalid value for 'temperature': Input should be less than or equal to 2.",
        ),
        (
            body(messages=[{"content": "x"}]),
            "messages.0.role",
            "invalid_value",
            "Invalid value for 'messages.0.role': Unable to extract tag using discriminator 'role'.",
        ),
        (
            body(n=2),
            "n",
            "unsupported_parameter",
            "n > 1 is not supported: AI Studio returns one choice per request",
        ),
        (
            body(top_logprobs=0),
            "top_logprobs",
            "unsupported_parameter",
            "top_logprobs is not supported by AI Studio",
        ),
    ],
)
def test_error_message_code_and_param(data: Any, param: str | None, code: str, message: str) -> None:
    """Each 400 carries the OpenAI error fields: a message naming the parameter (the missing one, or the bad
    value with the reason), ``param`` and ``code``."""
    err = refused(data)
    assert (err.param, err.code, err.message) == (param, code, message)


def test_unknown_tag_names_the_tag_and_the_allowed_ones() -> None:
    """An unknown ``role`` / part ``type`` is reported on the tag field, quoting the value and the allowed tags."""
    err = refused(body(messages=[{"role": "robot", "content": "x"}]))
    assert err.param == "messages.0.role"
    assert err.message.startswith("Invalid value for 'messages.0.role': Input tag 'robot'")
    assert "'system', 'developer', 'user', 'assistant', 'tool', 'function'" in err.message
