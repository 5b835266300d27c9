"""A value of the wrong JSON type where a dialect expects a string (an object, a list) is the dialect's
400 naming the field, never a 500: membership tests against sets and dicts raise ``TypeError`` on
unhashable values, and string methods ``AttributeError`` on anything else."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

MODEL = "gemini-2.5-flash"
TOOL = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
ANTHROPIC_TOOL = {"name": "f", "input_schema": {"type": "object", "properties": {}}}
USER = [{"role": "user", "content": "hi"}]
GEMINI = "/v1beta/models/gemini-2.5-flash:generateContent"
GEMINI_USER = [{"role": "user", "parts": [{"text": "hi"}]}]

ODD = ({"a": 1}, ["a"], 3)

CASES: list[tuple[str, str, Any]] = [
    (
        "/v1/responses",
        "reasoning.effort",
        lambda v: {"model": MODEL, "input": "hi", "reasoning": {"effort": v}},
    ),
    (
        "/v1/responses",
        "reasoning.summary",
        lambda v: {"model": MODEL, "input": "hi", "reasoning": {"summary": v}},
    ),
    ("/v1/responses", "input[0].type", lambda v: {"model": MODEL, "input": [{"type": v, "content": "hi"}]}),
    ("/v1/responses", "input[0].role", lambda v: {"model": MODEL, "input": [{"role": v, "content": "hi"}]}),
    (
        "/v1/responses",
        "tools[0].name",
        lambda v: {"model": MODEL, "input": "hi", "tools": [{**TOOL, "name": v}]},
    ),
    (
        "/v1/responses",
        "tools[0].type",
        lambda v: {"model": MODEL, "input": "hi", "tools": [{**TOOL, "type": v}]},
    ),
    (
        "/v1/responses",
        "tool_choice",
        lambda v: {"model": MODEL, "input": "hi", "tools": [TOOL], "tool_choice": v},
    ),
    (
        "/v1/responses",
        "text.format.type",
        lambda v: {"model": MODEL, "input": "hi", "text": {"format": {"type": v}}},
    ),
    (
        "/v1/messages",
        "messages[0].role",
        lambda v: {"model": MODEL, "max_tokens": 9, "messages": [{"role": v, "content": "hi"}]},
    ),
    (
        "/v1/messages",
        "messages[0].content[0].type",
        lambda v: {
            "model": MODEL,
            "max_tokens": 9,
            "messages": [{"role": "user", "content": [{"type": v, "text": "x"}]}],
        },
    ),
    (
        "/v1/messages",
        "tools[0].name",
        lambda v: {
            "model": MODEL,
            "max_tokens": 9,
            "messages": USER,
            "tools": [{**ANTHROPIC_TOOL, "name": v}],
        },
    ),
    (
        "/v1/messages",
        "tool_choice.type",
        lambda v: {
            "model": MODEL,
            "max_tokens": 9,
            "messages": USER,
            "tools": [ANTHROPIC_TOOL],
            "tool_choice": {"type": v},
        },
    ),
    (
        "/v1/messages",
        "thinking.type",
        lambda v: {
            "model": MODEL,
            "max_tokens": 9,
            "messages": USER,
            "thinking": {"type": v, "budget_tokens": 1024},
        },
    ),
    (
        "/v1/messages",
        "stop_sequences[0]",
        lambda v: {"model": MODEL, "max_tokens": 9, "messages": USER, "stop_sequences": [v]},
    ),
    (GEMINI, "contents[0].role", lambda v: {"contents": [{"role": v, "parts": [{"text": "hi"}]}]}),
    (
        GEMINI,
        "generationConfig.thinkingConfig.thinkingLevel",
        lambda v: {"contents": GEMINI_USER, "generationConfig": {"thinkingConfig": {"thinkingLevel": v}}},
    ),
    (
        GEMINI,
        "generationConfig.responseMimeType",
        lambda v: {"contents": GEMINI_USER, "generationConfig": {"responseMimeType": v}},
    ),
    (
        GEMINI,
        "tools[0].functionDeclarations[0].name",
        lambda v: {"contents": GEMINI_USER, "tools": [{"functionDeclarations": [{"name": v}]}]},
    ),
    (
        GEMINI,
        "toolConfig.functionCallingConfig.mode",
        lambda v: {"contents": GEMINI_USER, "toolConfig": {"functionCallingConfig": {"mode": v}}},
    ),
    (
        "/v1/chat/completions",
        "reasoning_effort",
        lambda v: {"model": MODEL, "messages": USER, "reasoning_effort": v},
    ),
    (
        "/v1/chat/completions",
        "tools[0].function.name",
        lambda v: {
            "model": MODEL,
            "messages": USER,
            "tools": [{"type": "function", "function": {"name": v}}],
        },
    ),
]


def error_message(path: str, body: Any) -> str:
    """The message of the dialect's error object (its shape checked on the way)."""
    if path.startswith("/v1/messages"):
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    elif path.startswith("/v1beta"):
        assert body["error"]["status"] == "INVALID_ARGUMENT" and body["error"]["code"] == 400, body
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
        assert body["error"]["type"] == "invalid_request_error", body
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message


#: Fields where a number is also valid (chat's ``reasoning_effort`` takes a token budget).
NUMBERS_VALID = {("/v1/chat/completions", "reasoning_effort")}
RUNS = [
    pytest.param(path, make, odd, id=f"{path} {field} {type(odd).__name__}")
    for path, field, make in CASES
    for odd in ODD
    if not (isinstance(odd, int) and (path, field) in NUMBERS_VALID)
]


@pytest.mark.parametrize(("path", "make", "odd"), RUNS)
async def test_a_wrong_type_where_a_string_belongs_is_the_dialect_s_400(
    ready: TestClient, path: str, make: Any, odd: Any
):
    headers = {"anthropic-version": "2023-06-01", "x-goog-api-key": "unused"}
    resp = await ready.post(path, json=make(odd), headers=headers)
    body = await resp.json()
    assert resp.status == 400, (resp.status, body)
    error_message(path, body)
