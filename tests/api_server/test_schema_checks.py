"""response_format schemas and tool parameter schemas are checked before any generation (400 naming the param)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api_server.fake_worker import FakeWorker

MESSAGES = [{"role": "user", "content": "hi"}]


def with_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "gemini-2.5-pro",
        "messages": MESSAGES,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }


def with_tools(*functions: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "gemini-2.5-pro",
        "messages": MESSAGES,
        "tools": [{"type": "function", "function": f} for f in functions],
    }


async def refused(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/v1/chat/completions", json=body)
    error = (await resp.json())["error"]
    assert resp.status == 400, error
    assert error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}},
        {"$ref": "#"},
        {"allOf": [{"$ref": "#/$defs/a"}], "$defs": {"a": {"anyOf": [{"$ref": "#"}]}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"a": {"$ref": "https://example.invalid/remote.json"}}},
        {"type": "banana"},
    ],
)
async def test_bad_response_format_schema_is_a_400_before_generation(
    ready: TestClient, fake: FakeWorker, schema: dict[str, Any]
) -> None:
    """A $ref loop, a $ref to a missing definition, a remote $ref or a bad type: 400, the page never sees it."""
    error = await refused(ready, with_schema(schema))
    assert error["param"] == "response_format.json_schema.schema"
    assert fake.submitted == []


async def test_recursive_schema_through_properties_is_accepted(ready: TestClient, fake: FakeWorker) -> None:
    """A tree (a $ref back to the root under properties/items) is a legitimate recursive schema."""
    schema = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    resp = await ready.post("/v1/chat/completions", json=with_schema(schema))
    assert resp.status != 400, await resp.text()
    assert len(fake.submitted) == 1


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "banana"},
        {"type": "object", "properties": {"when": {"type": "dat"}}, "required": ["when"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}},
    ],
)
async def test_invalid_tool_parameter_schema_is_a_400_naming_the_tool(
    ready: TestClient, fake: FakeWorker, parameters: dict[str, Any]
) -> None:
    """An invalid parameters schema is refused naming tools.N.function.parameters and the function."""
    ok = {"name": "ok", "parameters": {"type": "object"}}
    error = await refused(ready, with_tools(ok, {"name": "book", "parameters": parameters}))
    assert error["param"] == "tools.1.function.parameters" and "book" in error["message"]
    assert fake.submitted == []


async def test_duplicate_function_names_are_a_400(ready: TestClient, fake: FakeWorker) -> None:
    """Two functions with the same name: 400 naming the second one."""
    error = await refused(ready, with_tools({"name": "f"}, {"name": "g"}, {"name": "f"}))
    assert error["param"] == "tools.2.function.name" and "'f'" in error["message"]
    assert fake.submitted == []


async def test_upper_case_type_names_are_accepted(ready: TestClient, fake: FakeWorker) -> None:
    """Gemini's upper-case type names ("STRING", "OBJECT") are not refused: the worker normalises them."""
    parameters = {
        "type": "OBJECT",
        "properties": {"kind": {"type": "STRING", "enum": ["a", "b"]}, "n": {"type": ["INTEGER", "null"]}},
    }
    resp = await ready.post(
        "/v1/chat/completions", json=with_tools({"name": "pick", "parameters": parameters})
    )
    assert resp.status == 200, await resp.text()
    assert fake.submitted[0].job.tools[0]["function"]["parameters"] == parameters  # passed on as given
