"""Structured output: ``response_format`` json_object / json_schema, validated before the client sees it.

The simulator answers ``#sim:json`` with JSON valid for the response schema it received (``{"answer":
"simulated"}`` when it received none) and ``#sim:json=invalid`` with JSON that violates it.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pydantic
import pytest

from aistudio_sim.stack import Stack
from tests.features.conftest import MODEL, last_request, user

#: Valid for the simulator's schema-less JSON answer as well as for what it derives from this schema.
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "minLength": 1}},
    "required": ["answer"],
    "additionalProperties": False,
}


#: A schema no simulated answer satisfies: the simulator ignores ``pattern`` when it makes up JSON, so the
#: answer to ``#sim:json`` always violates it, whether or not the schema reached the page.
DIGITS_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "pattern": "^[0-9]+$"}},
    "required": ["answer"],
}


def json_schema(schema: dict[str, Any], strict: bool | None = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "reply", "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


class Reply(pydantic.BaseModel):
    answer: str


def schema_reached_the_page(recorded: dict[str, Any]) -> bool:
    """The schema went out through the structured-output toggle, or as an instruction in the prompt."""
    config = recorded["generation_config"]
    if config.get("response_mime_type") == "application/json" and config.get("response_schema"):
        return True
    return '"answer"' in recorded["prompt"] and "JSON" in recorded["prompt"]


def test_json_schema_valid_answer_is_returned_as_json(client: openai.OpenAI, stack: Stack):
    """A valid answer comes back as the message content, parseable and valid for the schema."""
    done = client.chat.completions.create(
        model=MODEL, messages=user("Reply in JSON #sim:json"), response_format=json_schema(ANSWER_SCHEMA)
    )
    value = json.loads(done.choices[0].message.content)
    assert value == json.loads(last_request(stack)["response"]["answer_text"])
    assert isinstance(value["answer"], str) and value["answer"]
    assert done.choices[0].finish_reason == "stop"


def test_sdk_parse_with_a_pydantic_model_works_unmodified(client: openai.OpenAI, stack: Stack):
    """client.chat.completions.parse(response_format=Model): strict schema in, parsed object out."""
    done = client.chat.completions.parse(
        model=MODEL, messages=user("Structured #sim:json"), response_format=Reply
    )
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, Reply) and parsed.answer


def test_json_schema_reaches_the_page_as_toggle_or_instruction(client: openai.OpenAI, stack: Stack):
    """The schema is sent through the structured-output toggle (or, without one, a prompt instruction)."""
    client.chat.completions.create(
        model=MODEL, messages=user("Reply #sim:json"), response_format=json_schema(ANSWER_SCHEMA)
    )
    assert schema_reached_the_page(last_request(stack))


def test_json_object_reaches_the_page_as_json_mime_type_or_instruction(client: openai.OpenAI, stack: Stack):
    """json_object: application/json on the page, or an instruction to answer with a JSON object."""
    client.chat.completions.create(
        model=MODEL, messages=user("Reply #sim:json"), response_format={"type": "json_object"}
    )
    recorded = last_request(stack)
    assert (
        recorded["generation_config"].get("response_mime_type") == "application/json"
        or "JSON" in recorded["prompt"]
    )


def test_json_schema_invalid_answer_is_a_502(client: openai.OpenAI, stack: Stack):
    """#sim:json=invalid is never returned: 502 invalid_json_output, whatever way it is broken."""
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=user("Reply #sim:json=invalid"), response_format=json_schema(ANSWER_SCHEMA)
        )
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "invalid_json_output"
    assert caught.value.body["type"] == "upstream_error"


def test_schema_violation_is_a_502_naming_the_path_and_rule(client: openai.OpenAI, stack: Stack):
    """JSON that parses but breaks the schema: 502 whose message names the property and the broken rule."""
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=user("Digits #sim:json"), response_format=json_schema(DIGITS_SCHEMA)
        )
    assert caught.value.status_code == 502
    error = caught.value.body
    assert error["code"] == "invalid_json_output"
    assert "violates the JSON schema at answer" in error["message"]
    assert "does not match '^[0-9]+$'" in error["message"]


def test_non_json_answer_to_json_object_is_a_502(client: openai.OpenAI, stack: Stack):
    """json_object and a prose answer: 502 invalid_json_output saying it is not valid JSON."""
    # With structured output on, the simulator answers JSON; echo makes it answer this prose instead.
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=user("Prose please #sim:echo"), response_format={"type": "json_object"}
        )
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "invalid_json_output"
    assert "not valid JSON" in caught.value.body["message"]


def test_json_object_valid_answer_is_returned(client: openai.OpenAI, stack: Stack):
    """json_object with a JSON object answer comes back unchanged."""
    done = client.chat.completions.create(
        model=MODEL, messages=user("Object #sim:json"), response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(done.choices[0].message.content), dict)


def test_streamed_invalid_answer_ends_with_an_error_event(client: openai.OpenAI, stack: Stack):
    """Streaming: the violation is reported as an SSE error after the text, not a normal finish."""
    stream = client.chat.completions.create(
        model=MODEL,
        messages=user("Digits #sim:json"),
        response_format=json_schema(DIGITS_SCHEMA),
        stream=True,
    )
    text = ""
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert "violates the JSON schema at answer" in caught.value.message
    assert caught.value.body["code"] == "invalid_json_output"
    assert text == last_request(stack)["response"]["answer_text"]


def test_strict_false_is_still_validated(client: openai.OpenAI, stack: Stack):
    """strict: false does not switch validation off: an invalid answer is still a 502."""
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=user("Reply #sim:json=invalid"),
            response_format=json_schema(ANSWER_SCHEMA, strict=False),
        )
    assert caught.value.status_code == 502


def test_an_invalid_schema_is_refused_before_the_page(client: openai.OpenAI, stack: Stack):
    """A response_format schema that is not a JSON schema: 400 naming it, nothing sent upstream."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=user("x"), response_format=json_schema({"type": "no-such-type"})
        )
    assert caught.value.body["param"] == "response_format.json_schema.schema"
    assert stack.sim_requests() == []
