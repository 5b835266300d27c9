"""The OpenAPI 3.0 document of this server, with the chat request schema taken from pydantic."""

from __future__ import annotations

import copy
import functools
from typing import Any

from api_server.dialects import anthropic_openapi, gemini_openapi, responses_openapi
from api_server.schemas import ChatCompletionRequest
from shared.settings import VERSION

REF = "#/components/schemas/{model}"


def to_openapi30(node: Any) -> Any:
    """JSON Schema 2020-12 (pydantic) -> the OpenAPI 3.0 dialect: nullable, enum for const."""
    if isinstance(node, list):
        return [to_openapi30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    nullable = False
    for key in ("anyOf", "oneOf"):
        alts = out.get(key)
        if isinstance(alts, list) and {"type": "null"} in alts:
            rest = [a for a in alts if a != {"type": "null"}]
            del out[key]
            nullable = True
            if len(rest) == 1 and "$ref" not in rest[0]:
                out.update(rest[0])
            elif len(rest) == 1:
                out["allOf"] = rest
            else:
                out[key] = rest
    out = {k: to_openapi30(v) for k, v in out.items()}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if nullable:
        out["nullable"] = True
        if "default" in out and out["default"] is None:
            del out["default"]
    return out


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": "string", "nullable": True},
                    "code": {"type": "string", "nullable": True},
                },
            }
        },
    }


def _completion_schema() -> dict[str, Any]:
    tool_call = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["function"]},
            "function": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
            },
        },
    }
    annotation = {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["url_citation"]},
            "url_citation": {
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "title": {"type": "string"},
                    "start_index": {"type": "integer"},
                    "end_index": {"type": "integer"},
                },
            },
        },
    }
    grounding = {
        "type": "object",
        "description": "Extension: the Google Search grounding data as AI Studio sent it",
        "properties": {
            "sources": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "uri": {"type": "string"},
                        "title": {"type": "string", "nullable": True},
                        "domain": {"type": "string", "nullable": True},
                    },
                },
            },
            "queries": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "system_fingerprint": {"type": "string"},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "finish_reason": {
                            "type": "string",
                            "enum": ["stop", "length", "tool_calls", "content_filter"],
                        },
                        "message": {
                            "type": "object",
                            "properties": {
                                "role": {"type": "string"},
                                "content": {"type": "string", "nullable": True},
                                "reasoning_content": {"type": "string"},
                                "tool_calls": {"type": "array", "items": tool_call},
                                "annotations": {
                                    "type": "array",
                                    "items": annotation,
                                    "description": "Google Search sources as OpenAI url_citation "
                                    "annotations (start_index/end_index are 0)",
                                },
                                "grounding": grounding,
                            },
                        },
                    },
                },
            },
            "usage": {
                "type": "object",
                "properties": {
                    "prompt_tokens": {"type": "integer"},
                    "completion_tokens": {"type": "integer"},
                    "total_tokens": {"type": "integer"},
                    "prompt_tokens_details": {
                        "type": "object",
                        "properties": {
                            "cached_tokens": {"type": "integer"},
                            "audio_tokens": {"type": "integer"},
                        },
                    },
                    "completion_tokens_details": {
                        "type": "object",
                        "properties": {
                            "reasoning_tokens": {"type": "integer"},
                            "audio_tokens": {"type": "integer"},
                            "accepted_prediction_tokens": {"type": "integer"},
                            "rejected_prediction_tokens": {"type": "integer"},
                        },
                    },
                },
            },
        },
    }


def _model_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
            "display_name": {"type": "string"},
            "description": {"type": "string"},
            "input_token_limit": {"type": "integer", "nullable": True},
            "output_token_limit": {"type": "integer", "nullable": True},
            "thinking": {"type": "string"},
        },
    }


def _errors(*codes: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Error"}
    return {
        str(c): {"description": "OpenAI-style error", "content": {"application/json": {"schema": ref}}}
        for c in codes
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@functools.cache
def _document() -> dict[str, Any]:
    request_schema = ChatCompletionRequest.model_json_schema(ref_template=REF, by_alias=True)
    defs = request_schema.pop("$defs", {})
    schemas = {name: to_openapi30(s) for name, s in defs.items()}
    schemas["ChatCompletionRequest"] = to_openapi30(request_schema)
    schemas["ChatCompletion"] = _completion_schema()
    schemas["Model"] = _model_schema()
    schemas["Error"] = _error_schema()
    any_object = {"type": "object"}
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    #: A client key's limits (``api_server/key_limits.py``); null = none.
    positive = {"type": "integer", "minimum": 1, "nullable": True}
    key_limits = {
        "rpm": positive,
        "tpm": positive,
        "daily_tokens": positive,
        "max_concurrent": positive,
        "models": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "nullable": True,
        },
        "expires_at": {
            "oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}],
            "nullable": True,
            "description": "Unix seconds or ISO 8601",
        },
    }
    #: ``since``/``until``: Unix seconds or ISO 8601.
    range_params = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in ("since", "until")
    ]
    paths: dict[str, Any] = {
        "/v1/chat/completions": {
            "post": {
                "operationId": "createChatCompletion",
                "security": security,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ChatCompletionRequest"},
                            "example": {
                                "model": "gemini-2.5-flash",
                                "messages": [{"role": "user", "content": "Why is the sky blue?"}],
                            },
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "A completion, or an SSE stream of chunks when stream is true",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletion"}},
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 404, 413, 429, 499, 502, 503, 504),
                },
            }
        },
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "security": security,
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "object": {"type": "string"},
                                "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
                            },
                        }
                    ),
                    **_errors(401, 503),
                },
            }
        },
        "/v1/models/{model_id}": {
            "get": {
                "operationId": "retrieveModel",
                "security": security,
                "parameters": [
                    {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _ok({"$ref": "#/components/schemas/Model"}), **_errors(401, 404, 503)},
            }
        },
        "/v1/queue": {
            "get": {
                "operationId": "listQueue",
                "security": security,
                "responses": {"200": _ok(any_object), **_errors(401)},
            }
        },
        "/v1/cancel/{req_id}": {
            "post": {
                "operationId": "cancelRequest",
                "security": security,
                "parameters": [
                    {"name": "req_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _ok(any_object), **_errors(401, 404)},
            }
        },
        "/health": {
            "get": {
                "operationId": "health",
                "responses": {"200": _ok(any_object), "503": _ok(any_object, "Some component is unhealthy")},
            }
        },
        "/api/info": {"get": {"operationId": "info", "responses": {"200": _ok(any_object)}}},
        "/api/keys": {
            "get": {
                "operationId": "listKeys",
                "security": security,
                "responses": {"200": _ok(any_object), **_errors(401, 403)},
            },
            "post": {
                "operationId": "createKey",
                "security": security,
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"label": {"type": "string", "maxLength": 200}, **key_limits},
                            }
                        }
                    },
                },
                "responses": {"201": _ok(any_object), **_errors(400, 401, 403)},
            },
            "delete": {
                "operationId": "deleteKey",
                "security": security,
                "parameters": [
                    {"name": "id", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
                "responses": {"200": _ok(any_object), **_errors(400, 401, 403, 404)},
            },
        },
        "/api/keys/{key_id}": {
            "patch": {
                "operationId": "changeKey",
                "summary": "Change a key's label or limits (null removes a limit)",
                "security": security,
                "parameters": [
                    {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"label": {"type": "string", "maxLength": 200}, **key_limits},
                            }
                        }
                    },
                },
                "responses": {"200": _ok(any_object), **_errors(400, 401, 403, 404)},
            },
            "delete": {
                "operationId": "deleteKeyById",
                "security": security,
                "parameters": [
                    {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _ok(any_object), **_errors(401, 403, 404)},
            },
        },
        "/api/accounts": {
            "get": {
                "operationId": "listAccounts",
                "security": security,
                "responses": {"200": _ok(any_object), **_errors(401, 403, 503)},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus text format (admin key; open on loopback while no key is set)",
                "security": security,
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 403),
                },
            }
        },
        "/api/usage": {
            "get": {
                "operationId": "usage",
                "summary": "Usage sums from the ledger (admin: all; a client key: its own)",
                "security": security,
                "parameters": [
                    *range_params,
                    {
                        "name": "group_by",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["key", "model", "account", "dialect", "day"]},
                    },
                ],
                "responses": {"200": _ok(any_object), **_errors(400, 401)},
            }
        },
        "/api/usage/export": {
            "get": {
                "operationId": "usageExport",
                "summary": "The ledger's rows as CSV",
                "security": security,
                "parameters": [
                    *range_params,
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["csv"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "CSV rows",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401),
                },
            }
        },
        "/api/requests/{request_id}": {
            "get": {
                "operationId": "requestTimeline",
                "summary": "One recent request's timeline (admin, or the key that sent it)",
                "security": security,
                "parameters": [
                    {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _ok(any_object), **_errors(401, 404)},
            }
        },
        "/api/accounts/{name}/{action}": {
            "post": {
                "operationId": "accountAction",
                "security": security,
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["disable", "enable"]},
                    },
                ],
                "responses": {"200": _ok(any_object), **_errors(401, 403, 404, 503)},
            }
        },
        "/openapi.json": {"get": {"operationId": "openapi", "responses": {"200": _ok(any_object)}}},
    }
    paths.update(gemini_openapi.paths())
    schemas.update(gemini_openapi.schemas())
    paths.update(anthropic_openapi.paths())
    schemas.update(anthropic_openapi.schemas())
    paths.update(responses_openapi.paths())
    schemas.update(responses_openapi.schemas())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "aistudio-proxy",
            "version": VERSION,
            "description": "OpenAI-compatible (and Anthropic Messages and Gemini API) access to Google AI Studio, "
            "driven through its web page.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                **gemini_openapi.security_schemes(),
            },
        },
    }


def openapi_document(base_url: str) -> dict[str, Any]:
    doc = copy.deepcopy(_document())
    doc["servers"] = [{"url": base_url}]
    return doc
