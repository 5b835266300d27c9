"""The Anthropic Messages paths of ``/openapi.json`` (``api_server/openapi.py`` merges them)."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/{}"

_BLOCK = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {
            "type": "string",
            "enum": ["text", "image", "document", "tool_use", "tool_result", "thinking"],
        },
        "text": {"type": "string"},
        "source": {"type": "object"},
        "id": {"type": "string"},
        "name": {"type": "string"},
        "input": {"type": "object"},
        "tool_use_id": {"type": "string"},
        "content": {},
        "is_error": {"type": "boolean"},
    },
}
_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["user", "assistant"]},
        "content": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"$ref": REF.format("AnthropicBlock")}}]
        },
    },
}
_TOOL = {
    "type": "object",
    "required": ["name", "input_schema"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "description": {"type": "string"},
        "input_schema": {"type": "object"},
    },
}
_COMMON = {
    "model": {"type": "string"},
    "system": {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"$ref": REF.format("AnthropicBlock")}}]
    },
    "messages": {"type": "array", "minItems": 1, "items": {"$ref": REF.format("AnthropicMessage")}},
    "tools": {"type": "array", "items": {"$ref": REF.format("AnthropicTool")}},
    "tool_choice": {"type": "object", "properties": {"type": {"type": "string"}, "name": {"type": "string"}}},
    "thinking": {
        "type": "object",
        "properties": {"type": {"type": "string"}, "budget_tokens": {"type": "integer"}},
    },
}
_REQUEST = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        **_COMMON,
        "max_tokens": {"type": "integer", "minimum": 1},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "top_k": {"type": "integer", "minimum": 0},
        "metadata": {"type": "object"},
        "stream": {"type": "boolean"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}


def schemas() -> dict[str, Any]:
    return {
        "AnthropicBlock": _BLOCK,
        "AnthropicMessage": _MESSAGE,
        "AnthropicTool": _TOOL,
        "AnthropicMessagesRequest": _REQUEST,
        "AnthropicError": _ERROR,
    }


def _errors(*codes: int) -> dict[str, Any]:
    ref = {"$ref": REF.format("AnthropicError")}
    return {
        str(c): {"description": "Anthropic error", "content": {"application/json": {"schema": ref}}}
        for c in codes
    }


#: The request body's example (also the case that schema fuzzing always sends first).
EXAMPLE = {
    "model": "gemini-2.5-flash",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Why is the sky blue?"}],
}


def paths() -> dict[str, Any]:
    body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format("AnthropicMessagesRequest")},
                "example": EXAMPLE,
            }
        },
    }
    count = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["model", "messages"], "properties": _COMMON}
            }
        },
    }
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "/v1/messages": {
            "post": {
                "operationId": "createMessage",
                "summary": "Anthropic Messages API (stream: true gives its SSE events)",
                "requestBody": body,
                "responses": {"200": ok, **_errors(400, 401, 404, 413, 429, 529)},
            }
        },
        "/v1/messages/count_tokens": {
            "post": {
                "operationId": "countMessageTokens",
                "requestBody": count,
                "responses": {"200": ok, **_errors(400, 401, 404, 413)},
            }
        },
    }
