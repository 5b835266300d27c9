"""Gemini's answers (sans-IO): ``GenerateContentResponse`` objects, streamed or whole, models and errors.

``GeminiRenderer`` is the ``Renderer`` (``api_server/delivery.py``) of ``generateContent`` and
``streamGenerateContent``: a stream is ``data:`` events with ``?alt=sse``, else Google's JSON
array sent as it grows (``[`` + objects separated by ``,\\r\\n`` + ``]``). Each piece of the
answer is a chunk with one part (text; a ``thought: true`` part only when the request set
``includeThoughts``; a ``functionCall`` with ``id``/``name``/``args``); the last chunk carries
``finishReason``, ``groundingMetadata`` and ``usageMetadata`` (``candidatesTokenCount`` without the
thoughts, which ``thoughtsTokenCount`` counts apart, as Google does).

``error_body`` is Google's error shape ``{"error": {"code", "message", "status"}}`` (registered for
the Gemini paths in ``api_server/dialects/errors.py``); ``model_object`` a model as
``GET /v1beta/models`` lists it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from api_server.answer import Answer, Call
from api_server.render import check_response_format, check_tool_choice
from api_server.sse import encode_comment, encode_event
from shared import protocol
from shared.errors import ServiceError

#: HTTP status -> Google's canonical error status.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    421: "PERMISSION_DENIED",
    422: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: The neutral finish reason (``Answer.finish``) -> Google's ``finishReason``.
FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "max_tokens": "MAX_TOKENS",
    "safety": "SAFETY",
    "content_filter": "SAFETY",
    "recitation": "RECITATION",
    "language": "LANGUAGE",
    "blocklist": "BLOCKLIST",
    "prohibited_content": "PROHIBITED_CONTENT",
    "spii": "SPII",
    "image_safety": "IMAGE_SAFETY",
    "malformed_function_call": "MALFORMED_FUNCTION_CALL",
    "unexpected_tool_call": "UNEXPECTED_TOOL_CALL",
    "too_many_tool_calls": "TOO_MANY_TOOL_CALLS",
}

GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def error_body(err: ServiceError) -> dict[str, Any]:
    status = STATUS_NAMES.get(err.status, "INTERNAL" if err.status >= 500 else "FAILED_PRECONDITION")
    error: dict[str, Any] = {"code": err.status, "message": err.message, "status": status}
    if err.code:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": err.code.upper(),
                "domain": "aistudio-proxy",
                "metadata": {"param": err.param} if err.param else {},
            }
        ]
    return {"error": error}


def shape(err: ServiceError) -> tuple[int, dict[str, Any]]:
    """The ``ErrorShape`` of the Gemini paths."""
    return err.status, error_body(err)


def model_object(m: protocol.ModelInfo) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "name": f"models/{m.id}",
        "baseModelId": m.id,
        "version": "aistudio",
        "displayName": m.display_name or m.id,
        "description": m.description or "",
        "supportedGenerationMethods": list(GENERATION_METHODS),
        "thinking": bool(m.thinking and m.thinking != "none"),
        "maxTemperature": 2.0,
    }
    if m.input_token_limit:
        obj["inputTokenLimit"] = m.input_token_limit
    if m.output_token_limit:
        obj["outputTokenLimit"] = m.output_token_limit
    if m.default_temperature is not None:
        obj["temperature"] = m.default_temperature
    if m.default_top_p is not None:
        obj["topP"] = m.default_top_p
    return obj


def finish_reason(answer: Answer) -> str:
    return FINISH_REASONS.get(answer.finish, "OTHER")


def call_id(response_id: str, index: int) -> str:
    return "call_" + hashlib.sha256(f"{response_id}:{index}".encode()).hexdigest()[:24]


class GeminiRenderer:
    """One ``generateContent`` answer; ``sse``: ``?alt=sse`` (else the JSON-array stream)."""

    def __init__(
        self,
        *,
        response_id: str,
        model: str,
        prompt_messages: list[dict[str, Any]],
        include_thoughts: bool,
        tool_choice: Any,
        response_format: dict[str, Any] | None,
        sse: bool,
    ) -> None:
        self.response_id = response_id
        self.model = model
        self.answer = Answer(prompt_messages)
        self.include_thoughts = include_thoughts
        self.tool_choice = tool_choice
        self.response_format = response_format
        self.sse = sse
        self.media_type = "text/event-stream; charset=utf-8" if sse else "application/json; charset=utf-8"
        self.opened = False  # the JSON array's "[" went out
        self.items = 0  # objects sent in the array

    # ---- pieces

    def _call_part(self, call: Call) -> dict[str, Any]:
        return {
            "functionCall": {
                "id": call.id or call_id(self.response_id, call.index),
                "name": call.name,
                "args": call.arguments,
            }
        }

    def _part(self, piece: protocol.Reasoning | protocol.Content | Call) -> dict[str, Any] | None:
        if isinstance(piece, Call):
            return self._call_part(piece)
        if isinstance(piece, protocol.Reasoning):
            return {"text": piece.text, "thought": True} if self.include_thoughts else None
        return {"text": piece.text}

    def _response(self, candidate: dict[str, Any], *, usage: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"candidates": [{**candidate, "index": 0}]}
        if usage:
            out["usageMetadata"] = self.usage()
        out["modelVersion"] = self.model
        out["responseId"] = self.response_id
        return out

    def usage(self) -> dict[str, Any]:
        t = self.answer.tokens()
        usage: dict[str, Any] = {
            "promptTokenCount": t.prompt,
            "candidatesTokenCount": t.output,
            "totalTokenCount": t.prompt + t.output + t.reasoning,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": t.prompt}],
        }
        if t.reasoning:
            usage["thoughtsTokenCount"] = t.reasoning
        return usage

    def grounding(self) -> dict[str, Any] | None:
        a = self.answer
        if not a.sources and not a.queries:
            return None
        chunks = []
        for s in a.sources:
            web = {"uri": s.get("uri"), "title": s.get("title") or s.get("domain") or s.get("uri")}
            if s.get("domain"):
                web["domain"] = s["domain"]
            chunks.append({"web": web})
        return {"groundingChunks": chunks, "webSearchQueries": list(a.queries), "groundingSupports": []}

    def _final_candidate(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": parts, "role": "model"},
            "finishReason": finish_reason(self.answer),
        }
        grounding = self.grounding()
        if grounding:
            candidate["groundingMetadata"] = grounding
        return candidate

    # ---- the stream

    def _frame(self, obj: dict[str, Any]) -> bytes:
        if self.sse:
            return encode_event(obj)
        lead = (b",\r\n" if self.items else b"") if self.opened else b"["
        self.opened = True
        self.items += 1
        return lead + orjson.dumps(obj)

    def feed(self, event: protocol.Message) -> bytes:
        piece = self.answer.feed(event)
        part = self._part(piece) if piece is not None else None
        if part is None:
            return b""
        return self._frame(self._response({"content": {"parts": [part], "role": "model"}}, usage=False))

    def keepalive(self) -> bytes:
        """An SSE comment; in the JSON array whitespace, after opening the array if nothing went yet (a
        parser of the array finds "[" first whatever comes)."""
        if self.sse:
            return encode_comment("keep-alive")
        if not self.opened:
            self.opened = True
            return b"["
        return b"\r\n"

    def _check(self) -> str | None:
        calls = [{"function": {"name": c.name, "arguments": c.arguments_json}} for c in self.answer.calls]
        check_tool_choice(self.tool_choice, calls)
        return check_response_format(self.response_format, self.answer.text)

    def end(self) -> bytes:
        self._check()
        final = self._frame(self._response(self._final_candidate([{"text": ""}]), usage=True))
        return final if self.sse else final + b"]"

    def failure(self, err: ServiceError) -> bytes:
        if self.sse:
            return encode_event(error_body(err))
        return self._frame(error_body(err)) + b"]"

    def body(self) -> tuple[Any, Mapping[str, str]]:
        unfenced = self._check()
        a = self.answer
        parts: list[dict[str, Any]] = []
        if a.reasoning and self.include_thoughts:
            parts.append({"text": a.reasoning, "thought": True})
        text = unfenced if unfenced is not None else a.text
        if text:
            parts.append({"text": text})
        parts += [self._call_part(c) for c in a.calls]
        return self._response(self._final_candidate(parts), usage=True), {"x-usage-source": a.tokens().source}
