"""The Gemini paths of ``/openapi.json`` (OpenAPI 3.0): what ``api_server/openapi.py`` adds for them."""

from __future__ import annotations

from typing import Any

OBJ: dict[str, Any] = {"type": "object"}
REF = "#/components/schemas/{}"

_PART = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "thought": {"type": "boolean"},
        "inlineData": {
            "type": "object",
            "required": ["mimeType", "data"],
            "properties": {"mimeType": {"type": "string"}, "data": {"type": "string", "format": "byte"}},
        },
        "fileData": {
            "type": "object",
            "required": ["fileUri"],
            "properties": {"mimeType": {"type": "string"}, "fileUri": {"type": "string"}},
        },
        "functionCall": {
            "type": "object",
            "required": ["name"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "args": OBJ},
        },
        "functionResponse": {
            "type": "object",
            "required": ["name", "response"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "response": OBJ},
        },
    },
}
_CONTENT = {
    "type": "object",
    "required": ["parts"],
    "properties": {
        "role": {"type": "string", "enum": ["user", "model"]},
        "parts": {"type": "array", "items": {"$ref": REF.format("GeminiPart")}},
    },
}
_GENERATION_CONFIG = {
    "type": "object",
    "properties": {
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "topP": {"type": "number", "minimum": 0, "maximum": 1},
        "topK": {"type": "number", "description": "Accepted and ignored."},
        "candidateCount": {"type": "integer", "minimum": 1, "maximum": 1},
        "maxOutputTokens": {"type": "integer", "minimum": 1},
        "stopSequences": {"type": "array", "maxItems": 5, "items": {"type": "string", "minLength": 1}},
        "responseMimeType": {"type": "string", "enum": ["text/plain", "application/json"]},
        "responseSchema": OBJ,
        "responseJsonSchema": OBJ,
        "thinkingConfig": {
            "type": "object",
            "properties": {
                "includeThoughts": {"type": "boolean"},
                "thinkingBudget": {"type": "integer", "minimum": -1},
                "thinkingLevel": {"type": "string", "enum": ["MINIMAL", "LOW", "MEDIUM", "HIGH"]},
            },
        },
    },
}
_REQUEST = {
    "type": "object",
    "required": ["contents"],
    "properties": {
        "contents": {"type": "array", "minItems": 1, "items": {"$ref": REF.format("GeminiContent")}},
        "systemInstruction": {"$ref": REF.format("GeminiContent")},
        "generationConfig": {"$ref": REF.format("GeminiGenerationConfig")},
        "tools": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "functionDeclarations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "description": {"type": "string"},
                                "parameters": OBJ,
                                "parametersJsonSchema": OBJ,
                            },
                        },
                    },
                    "googleSearch": OBJ,
                    "googleSearchRetrieval": OBJ,
                    "urlContext": OBJ,
                },
            },
        },
        "toolConfig": {
            "type": "object",
            "properties": {
                "functionCallingConfig": {
                    "type": "object",
                    "properties": {
                        "mode": {"type": "string", "enum": ["AUTO", "ANY", "NONE", "VALIDATED"]},
                        "allowedFunctionNames": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
        "safetySettings": {"type": "array", "items": OBJ, "description": "Accepted and ignored."},
    },
}
_RESPONSE = {
    "type": "object",
    "properties": {
        "candidates": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "content": {"$ref": REF.format("GeminiContent")},
                    "finishReason": {"type": "string"},
                    "index": {"type": "integer"},
                    "groundingMetadata": OBJ,
                },
            },
        },
        "usageMetadata": {
            "type": "object",
            "properties": {
                "promptTokenCount": {"type": "integer"},
                "candidatesTokenCount": {"type": "integer"},
                "thoughtsTokenCount": {"type": "integer"},
                "totalTokenCount": {"type": "integer"},
            },
        },
        "modelVersion": {"type": "string"},
        "responseId": {"type": "string"},
    },
}
_MODEL = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "displayName": {"type": "string"},
        "description": {"type": "string"},
        "inputTokenLimit": {"type": "integer"},
        "outputTokenLimit": {"type": "integer"},
        "supportedGenerationMethods": {"type": "array", "items": {"type": "string"}},
        "thinking": {"type": "boolean"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
                "details": {"type": "array", "items": OBJ},
            },
        }
    },
}

SECURITY: list[dict[str, list[str]]] = [{"googApiKey": []}, {"googKeyQuery": []}, {"bearer": []}]
MODEL_PARAM = {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}


def schemas() -> dict[str, Any]:
    return {
        "GeminiPart": _PART,
        "GeminiContent": _CONTENT,
        "GeminiGenerationConfig": _GENERATION_CONFIG,
        "GenerateContentRequest": _REQUEST,
        "GenerateContentResponse": _RESPONSE,
        "GeminiModel": _MODEL,
        "GeminiError": _ERROR,
    }


def security_schemes() -> dict[str, Any]:
    return {
        "googApiKey": {"type": "apiKey", "in": "header", "name": "x-goog-api-key"},
        "googKeyQuery": {"type": "apiKey", "in": "query", "name": "key"},
    }


def _json(ref: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(ref)}}},
    }


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json("GeminiError", "Google-style error") for c in codes}


def _stream_errors(*codes: int) -> dict[str, Any]:
    """The stream's errors: a one-element array without ``alt=sse``, as Google answers them."""
    one = {"$ref": REF.format("GeminiError")}
    schema = {"oneOf": [one, {"type": "array", "minItems": 1, "maxItems": 1, "items": one}]}
    return {
        str(c): {"description": "Google-style error", "content": {"application/json": {"schema": schema}}}
        for c in codes
    }


#: The request body's example (also the case that schema fuzzing always sends first).
EXAMPLE = {"contents": [{"role": "user", "parts": [{"text": "Why is the sky blue?"}]}]}


def _method(
    operation: str, request: dict[str, Any], ok: dict[str, Any], *extra: dict[str, Any], stream: bool = False
) -> dict[str, Any]:
    errors = _stream_errors if stream else _errors
    body = {"schema": request, "example": EXAMPLE}
    return {
        "post": {
            "operationId": operation,
            "security": SECURITY,
            "parameters": [MODEL_PARAM, *extra],
            "requestBody": {"required": True, "content": {"application/json": body}},
            "responses": {"200": ok, **errors(400, 401, 404, 413, 429, 499, 502, 503, 504)},
        }
    }


def paths() -> dict[str, Any]:
    generate = {"$ref": REF.format("GenerateContentRequest")}
    count = {
        "type": "object",
        "properties": {
            "contents": {"type": "array", "items": {"$ref": REF.format("GeminiContent")}},
            "generateContentRequest": generate,
        },
    }
    alt = {
        "name": "alt",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["sse", "json"]},
    }
    stream_ok = {
        "description": "SSE data events with alt=sse, else a JSON array of responses sent as it grows",
        "content": {
            "text/event-stream": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": REF.format("GenerateContentResponse")}}
            },
        },
    }
    counted = {
        "description": "OK",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"totalTokens": {"type": "integer"}}}
            }
        },
    }
    page = [
        {"name": "pageSize", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
        {"name": "pageToken", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    listed = {
        "type": "object",
        "properties": {
            "models": {"type": "array", "items": {"$ref": REF.format("GeminiModel")}},
            "nextPageToken": {"type": "string"},
        },
    }
    return {
        "/v1beta/models/{model}:generateContent": _method(
            "geminiGenerateContent", generate, _json("GenerateContentResponse")
        ),
        "/v1beta/models/{model}:streamGenerateContent": _method(
            "geminiStreamGenerateContent", generate, stream_ok, alt, stream=True
        ),
        "/v1beta/models/{model}:countTokens": _method("geminiCountTokens", count, counted),
        "/v1beta/models": {
            "get": {
                "operationId": "geminiListModels",
                "security": SECURITY,
                "parameters": page,
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": listed}}},
                    **_errors(400, 401, 503),
                },
            }
        },
        "/v1beta/models/{model}": {
            "get": {
                "operationId": "geminiGetModel",
                "security": SECURITY,
                "parameters": [MODEL_PARAM],
                "responses": {"200": _json("GeminiModel"), **_errors(401, 404, 503)},
            }
        },
    }
