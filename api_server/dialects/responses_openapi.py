"""The OpenAI Responses API paths of ``/openapi.json`` (``api_server/openapi.py`` merges them)."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/{}"

_ITEM = {
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["message", "function_call", "function_call_output", "reasoning", "item_reference"],
        },
        "role": {"type": "string", "enum": ["user", "assistant", "system", "developer"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "call_id": {"type": "string"},
        "name": {"type": "string"},
        "arguments": {"type": "string"},
        "output": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
    },
}
_TOOL = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string"},
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "description": {"type": "string"},
        "parameters": {"type": "object"},
        "strict": {"type": "boolean"},
    },
}
_REQUEST = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string"},
        "input": {
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": REF.format("ResponsesInputItem")}},
            ]
        },
        "instructions": {"type": "string"},
        "previous_response_id": {"type": "string"},
        "tools": {"type": "array", "items": {"$ref": REF.format("ResponsesTool")}},
        "tool_choice": {
            "oneOf": [{"type": "string", "enum": ["auto", "none", "required"]}, {"type": "object"}]
        },
        "parallel_tool_calls": {"type": "boolean"},
        "text": {"type": "object", "properties": {"format": {"type": "object"}}},
        "reasoning": {
            "type": "object",
            "properties": {
                "effort": {"type": "string", "enum": ["none", "minimal", "low", "medium", "high", "xhigh"]},
                "summary": {"type": "string", "enum": ["auto", "concise", "detailed"]},
            },
        },
        "max_output_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "stream": {"type": "boolean"},
        "store": {"type": "boolean"},
        "metadata": {"type": "object"},
        "include": {"type": "array", "items": {"type": "string"}},
        "prompt_cache_key": {"type": "string"},
    },
}


def schemas() -> dict[str, Any]:
    return {"ResponsesInputItem": _ITEM, "ResponsesTool": _TOOL, "ResponsesRequest": _REQUEST}


def _errors(*codes: int) -> dict[str, Any]:
    ref = {"$ref": REF.format("Error")}
    return {
        str(c): {"description": "OpenAI-style error", "content": {"application/json": {"schema": ref}}}
        for c in codes
    }


#: The request body's example (also the case that schema fuzzing always sends first).
EXAMPLE = {"model": "gemini-2.5-flash", "input": "Why is the sky blue?"}


def paths() -> dict[str, Any]:
    body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": REF.format("ResponsesRequest")}, "example": EXAMPLE}
        },
    }
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    rid = [{"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "/v1/responses": {
            "post": {
                "operationId": "createResponse",
                "summary": "OpenAI Responses API (stream: true gives its typed SSE events)",
                "requestBody": body,
                "responses": {"200": ok, **_errors(400, 401, 404, 413, 429, 502, 503)},
            }
        },
        "/v1/responses/{response_id}": {
            "get": {
                "operationId": "getResponse",
                "parameters": rid,
                "responses": {"200": ok, **_errors(400, 401, 404)},
            },
            "delete": {
                "operationId": "deleteResponse",
                "parameters": rid,
                "responses": {"200": ok, **_errors(401, 404)},
            },
        },
        "/v1/responses/{response_id}/input_items": {
            "get": {
                "operationId": "listResponseInputItems",
                "parameters": [
                    *rid,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {"name": "order", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"]}},
                    {"name": "after", "in": "query", "schema": {"type": "string"}},
                    {"name": "before", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": ok, **_errors(400, 401, 404)},
            }
        },
    }
